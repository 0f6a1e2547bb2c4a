import Config
import CourierSupport
import Logging
import Ops
import RedisClient
import SidekiqModel

// `courier cancel JID`: asks every courier to cancel the running job JID. It
// only writes the request (`ZADD courier:cancel <now> <jid>`, what the
// sidecar gem's `Courier.cancel(jid)` writes too); each courier reads the
// requests of the last 5 minutes at its heartbeat and, if it runs that job,
// asks its executor to interrupt it.
enum CancelCommand {
    static let usage = "courier cancel <jid> [--redis-url <url>] [--namespace <prefix>]"
    static let overview = "Asks the courier running job JID to cancel it."
    static let discussion = """
        Writes ZADD courier:cancel <now> <jid> (with --namespace: NS:courier:cancel) and exits. \
        Every courier reads the requests of the last 5 minutes at its next heartbeat (within 5 s); \
        the one running the job asks its executor to interrupt it (POST /v1/jobs/cancel). \
        The job then counts as failed, and goes to neither the retry set nor the dead set. \
        A job that is not running within those 5 minutes is not touched (a queued job is not removed).
        """

    /// The same Redis settings as courier itself.
    static let flags = CourierOptions.redisFlags

    /// Runs the subcommand; returns the exit code (0 written, 1 Redis failed). Bad usage exits 64.
    static func run(_ arguments: [String]) async -> Int32 {
        guard
            let parsed = CourierMain.subcommandFlags(
                arguments, command: "courier cancel", flags: flags, positionals: 1, overview: overview, discussion: discussion, usage: usage)
        else { return 0 }
        guard let jid = parsed.positionals.first else {
            CourierMain.usageFailure(
                UsageError("cancel: missing <jid>: the jid of the job to cancel"), usage: usage, helpCommand: "courier cancel --help")
        }
        guard !jid.isEmpty, !jid.contains(where: \.isWhitespace) else {
            CourierMain.usageFailure(
                UsageError("cancel: '\(jid)' is not a jid (empty or with spaces)"), usage: usage, helpCommand: "courier cancel --help")
        }
        let env = processEnvironment().filter { !$0.value.isEmpty }
        let redis: CourierOptions.RedisSettings
        do { redis = try CourierOptions.redisSettings(parsed, env: env) } catch {
            CourierMain.usageFailure(error as? UsageError ?? UsageError("\(error)"), usage: usage, helpCommand: "courier cancel --help")
        }
        let keys = SidekiqKeys(namespace: redis.namespace)
        let logger = Logger(label: "courier") { label in CourierLogHandler(label: label, format: .text, level: .error) }
        let worker = RedisWorker(name: "cancel", endpoint: redis.endpoint, timeouts: redis.timeouts, logger: logger)
        let (key, score) = (keys.cancelRequests, JSONWriter.float(WallClock.system.now()))
        do {
            _ = try await worker.run { connection throws(RedisError) in
                try connection.command(["ZADD", key, score, jid]).orThrow("ZADD \(key)")
            }
        } catch {
            LogSink.standardOutput.flush()
            CourierMain.standardError("Error: cannot write the cancel request to Redis (\(redis.endpoint.redacted)): \(error)\n")
            return 1
        }
        print("cancel of \(jid) requested (\(key)); the courier running it asks its executor within one heartbeat (5 s); the request lasts 5 minutes")
        return 0
    }
}
