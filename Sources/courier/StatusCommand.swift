import Config
import CourierSupport
import Glibc
import Logging
import RedisClient
import SidekiqModel
import Status

// `courier status`: one screen from any Redis holding Sidekiq data, couriers
// running or not — queues, processes (with each courier's breaker), rates over
// the last minute, retry/scheduled/dead sizes, tenants. `--watch` refreshes,
// `--json` prints one object (one per refresh). The reading and rendering
// live in the Status module; this file is the command line and the loop.
enum StatusCommand {
    static let usage = "courier status [--watch[=<seconds>]] [--json] [--redis-url <url>] [--namespace <prefix>]"
    static let overview = "Shows queues, processes, rates and Sidekiq's sets from Redis."
    static let discussion = """
        Reads Sidekiq's keys (read-only) and prints one screen: totals, jobs over the last minute, \
        retry/scheduled/dead sizes, each queue's depth and latency, each process (busy/concurrency, quiet, \
        and for couriers the circuit breaker and jobs held), and jobs per tenant when payloads name one. \
        Works with or without couriers running, against Sidekiq 6, 7 and 8 data.
        One-shot rates come from the last complete minute of Sidekiq 7's metrics (written by couriers and \
        Sidekiq 7+); without them they are n/a. --watch measures the growth of stat:processed instead, \
        which every process counts.
        Exit codes: 0 shown, 1 Redis unreachable, 64 bad usage.
        """

    static let flags =
        CourierOptions.redisFlags + [
            Flag(
                "watch", short: "w", value: "seconds", kind: .number, defaultValue: "2",
                help: "Refresh every N seconds (default 2) until Ctrl-C; the screen is cleared only on a terminal."),
            Flag.toggle("json", help: "Print one JSON object (one line per refresh with --watch); schema in docs/operations.md."),
        ]

    /// Runs the subcommand; returns the exit code (0 shown, 1 Redis unreachable). Bad usage exits 64.
    static func run(_ arguments: [String]) async -> Int32 {
        let fail = { (error: UsageError) -> Never in CourierMain.usageFailure(error, usage: usage, helpCommand: "courier status --help") }
        guard
            let parsed = CourierMain.subcommandFlags(
                arguments, command: "courier status", flags: flags, overview: overview, discussion: discussion, usage: usage)
        else { return 0 }
        let interval = parsed.double("watch")
        if let interval, !(0.1...86_400).contains(interval) {
            fail(UsageError("--watch: must be 0.1…86400 seconds, got \(parsed.string("watch") ?? "")"))
        }
        let env = processEnvironment().filter { !$0.value.isEmpty }
        let redis: CourierOptions.RedisSettings
        do { redis = try CourierOptions.redisSettings(parsed, env: env) } catch { fail(error as? UsageError ?? UsageError("\(error)")) }

        // Status's output is the screen or JSON: the Redis worker's own log lines would only garble it.
        let quiet = Logger(label: "courier-status") { _ in SwiftLogNoOpLogHandler() }
        let worker = RedisWorker(name: "status", endpoint: redis.endpoint, timeouts: redis.timeouts, logger: quiet)
        let reader = StatusReader(worker: worker, keys: SidekiqKeys(namespace: redis.namespace), redisName: redis.endpoint.redacted)
        let json = parsed.isSet("json")
        guard let interval else {
            do {
                let snapshot = try await reader.read()
                print(json ? snapshot.json() : snapshot.text(), terminator: json ? "\n" : "")
                return 0
            } catch {
                unreachable(redis.endpoint.redacted, error)
                return 1
            }
        }
        return await watch(reader: reader, every: interval, json: json, terminal: isatty(1) == 1, redisName: redis.endpoint.redacted)
    }

    /// Refreshes until interrupted (Ctrl-C's default action ends the process). Redis failing at the first read exits 1;
    /// later it is shown on the screen (or as `{"error":…}`) and the next refresh tries again.
    static func watch(reader: StatusReader, every interval: Double, json: Bool, terminal: Bool, redisName: String) async -> Int32 {
        var window = RateWindow()
        var first = true
        // Home and clear, only for a person at a terminal: a pipe or a file gets the frames one after another.
        let clear = terminal && !json ? "\u{1B}[H\u{1B}[2J" : ""
        while true {
            do {
                var snapshot = try await reader.read()
                window.add(RateWindow.Sample(at: snapshot.takenAt, processed: snapshot.processed, failed: snapshot.failed))
                // The counters cover every process; after 10 s of watching they are the better figure.
                if let measured = window.rates, measured.window >= 10 || snapshot.rates.processed == nil { snapshot.rates = measured }
                print(
                    json ? snapshot.json() : clear + snapshot.text() + "\nrefreshing every \(Self.seconds(interval)); Ctrl-C to stop\n",
                    terminator: json ? "\n" : "")
            } catch {
                if first {
                    unreachable(redisName, error)
                    return 1
                }
                let message = "redis unreachable at \(redisName): \(error); retrying every \(Self.seconds(interval))"
                print(json ? "{\"error\":\(JSONWriter.string(message))}" : clear + "courier status  " + message)
            }
            first = false
            fflush(nil)
            try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
        }
    }

    static func unreachable(_ redisName: String, _ error: any Error) {
        CourierMain.standardError("Error: cannot read Sidekiq data from Redis at \(redisName): \(error)\n")
    }

    static func seconds(_ value: Double) -> String { value == value.rounded() ? "\(Int(value)) s" : "\(value) s" }
}
