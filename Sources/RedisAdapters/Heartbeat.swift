import Glibc
import JobDispatch
import Logging
import RedisClient
import SidekiqModel

// The process's presence in Redis, in Sidekiq's layout (sidekiq-compat §2.2–
// §2.4), so the unchanged Web UI and `Sidekiq::ProcessSet` list courier
// processes with their busy jobs; and the Web UI's Quiet/Stop buttons, which
// arrive as signals in a per-process list read at each beat. The same round
// trip flushes Sidekiq 7's execution metrics (SidekiqMetrics.swift) and reads
// the cancel requests of the last 5 minutes (`courier:cancel`). One field
// Sidekiq does not have, `courier`, carries what `courier status` shows per
// process (breaker, jobs held, executor); Sidekiq's readers ask for their own
// fields by name (HMGET), so an extra one is invisible to them.

/// A signal from the Web UI or the API.
public enum ProcessSignal: String, Sendable {
    /// Quiet (stop fetching, finish what runs): the Web UI's Quiet button.
    case quiet = "TSTP"
    /// Stop (shut down gracefully): the Web UI's Stop button.
    case stop = "TERM"
    /// Log every job in flight: `Sidekiq::Process#dump_threads`.
    case dump = "TTIN"
}

/// What the process hash says about this process (from the configuration).
public struct ProcessDescription: Sendable {
    /// Jobs run at once (`--concurrency`), written to the info and as the hash's own `concurrency` field (8.1.2+ readers).
    public var concurrency: Int
    /// The queues and their mode; gives the info's `queues`, `weights` and `capsules`.
    public var plan: QueuePlan
    /// Seconds the process hash lives without a beat.
    public var processTTL: Int
    /// The info's `tag` (Sidekiq's `-g`), shown next to the process on the Busy page.
    public var tag: String
    /// The info's `labels`; `courier` is always added after these.
    public var labels: [String]
    /// The executor's base URL for the `courier` field, without any user or password.
    public var executor: String

    /// Values from the configuration; the heartbeat turns them into the constant `info` JSON once.
    public init(concurrency: Int, plan: QueuePlan, processTTL: Int, tag: String, labels: [String], executor: String = "") {
        self.concurrency = concurrency
        self.plan = plan
        self.processTTL = processTTL
        self.tag = tag
        self.labels = labels
        self.executor = Self.withoutCredentials(executor)
    }

    /// `http://user:pass@host/` → `http://host/`: the process hash is readable by anyone with Redis access.
    static func withoutCredentials(_ url: String) -> String {
        let characters = Array(url)
        guard
            let colon = (0..<max(0, characters.count - 2)).first(where: {
                characters[$0] == ":" && characters[$0 + 1] == "/" && characters[$0 + 2] == "/"
            })
        else { return url }
        let hostStart = colon + 3
        let authorityEnd = characters[hostStart...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? characters.count
        guard let at = characters[hostStart..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(characters[..<hostStart]) + String(characters[(at + 1)...])
    }
}

/// What only courier knows about itself, written at each beat into the process hash's `courier` field
/// as `{"breaker":"closed","in_flight":3,"executor":"http://…","version":"0.1.0"}` (read by `courier status`).
public struct CourierProcessState: Sendable, Equatable {
    /// The circuit breaker's state: `closed`, `open` or `half_open`.
    public var breaker: String
    /// Jobs held: fetched and not yet acknowledged (executing, or waiting for their outcome's write).
    public var inFlight: Int
    /// Jobs it may hold now (the dispatcher's token limit); nil: the configured concurrency.
    public var concurrency: Int?

    public init(breaker: String = "closed", inFlight: Int = 0, concurrency: Int? = nil) {
        self.breaker = breaker
        self.inFlight = inFlight
        self.concurrency = concurrency
    }
}

/// Writes this process's hash, work entries and in-progress registry at every beat (5 s by default, sidekiq-compat §2.4)
/// and takes the process out of the list at exit. Runs on the housekeeping Redis worker, which recovery shares.
public final class Heartbeat: Sendable {
    private let worker: RedisWorker
    private let keys: SidekiqKeys
    private let identity: String
    /// The process info JSON for a concurrency (the configured one, or the dispatcher's token limit now).
    private let info: @Sendable (Int) -> String
    private let executor: String
    private let concurrency: Int
    private let queues: [String]
    private let ttl: Int
    private let clock: WallClock
    private let executionMetrics: ExecutionMetrics?

    /// How long a `courier:cancel` entry asks for its job to be cancelled.
    public static let cancelWindowSeconds = 300.0

    /// Builds the process info once; `startedAt` is the info's `started_at` (epoch seconds), `executionMetrics` nil writes no Metrics-tab data.
    public init(
        worker: RedisWorker, keys: SidekiqKeys, identity: ProcessIdentity, configuration: ProcessDescription,
        startedAt: Double, clock: WallClock = .system, executionMetrics: ExecutionMetrics? = nil
    ) {
        self.worker = worker
        self.executionMetrics = executionMetrics
        self.keys = keys
        self.identity = identity.description
        self.concurrency = configuration.concurrency
        self.queues = configuration.plan.names
        self.ttl = configuration.processTTL
        self.clock = clock
        self.executor = configuration.executor
        let weights = configuration.plan.effectiveWeights
        let weightJSON = "{" + weights.map { "\(JSONWriter.string($0.0)):\($0.1)" }.joined(separator: ",") + "}"
        // Every field any Sidekiq 6.x–8.x reader looks for (compat §2.2).
        let head = [
            "\"hostname\":\(JSONWriter.string(identity.hostname))",
            "\"started_at\":\(JSONWriter.float(startedAt))",
            "\"pid\":\(identity.pid)",
            "\"tag\":\(JSONWriter.string(configuration.tag))",
        ]
        let middle = [
            "\"queues\":\(JSONWriter.array(configuration.plan.names))",
            "\"labels\":\(JSONWriter.array(configuration.labels + ["courier"]))",
            "\"identity\":\(JSONWriter.string(identity.description))",
            "\"version\":\(JSONWriter.string(CourierVersion.sidekiqVersionString))",
            "\"embedded\":false",
            "\"weights\":[\(weightJSON)]",
        ]
        let mode = configuration.plan.mode.rawValue
        info = { concurrency in
            "{"
                + (head + ["\"concurrency\":\(concurrency)"] + middle + [
                    "\"capsules\":{\"default\":{\"concurrency\":\(concurrency),\"mode\":\"\(mode)\",\"weights\":\(weightJSON)}}"
                ]).joined(separator: ",") + "}"
        }
    }

    /// What one beat read back: waiting Web UI signals, queue and set sizes for metrics, recent cancel requests.
    public struct BeatResult: Sendable {
        /// Web UI signals that were waiting, oldest first.
        public var signals: [String]
        /// Live processes (`SCARD processes`, at least 1); the scheduler spreads its polls over them.
        public var processCount: Int
        /// Jobs waiting per queue (`LLEN`), by queue name without the prefix.
        public var depth: [String: Int]
        /// Seconds since the oldest waiting job's `enqueued_at`, per queue (0 when empty).
        public var latency: [String: Double]
        /// Sizes of the retry, schedule and dead sets.
        public var sets: [String: Int]
        /// Jids of the cancel requests made in the last 5 minutes (`courier cancel`, `Courier.cancel`).
        public var cancelRequests: [String]
    }

    /// Writes one beat; also samples queue depth/latency and set sizes for metrics,
    /// flushes the execution metrics (kept for the next beat if the write fails)
    /// and reads the recent cancel requests.
    public func beat(busy: [BusyJob], quiet: Bool, state: CourierProcessState = CourierProcessState()) async throws(RedisError) -> BeatResult {
        let now = clock.now()
        let courierField =
            "{\"breaker\":\(JSONWriter.string(state.breaker)),\"in_flight\":\(state.inFlight),"
            + "\"executor\":\(JSONWriter.string(executor)),\"version\":\(JSONWriter.string(CourierVersion.version))}"
        let rss = Self.residentKilobytes()
        var workFields: [[UInt8]] = []
        for job in busy {
            let value =
                "{\"queue\":\(JSONWriter.string(job.queue)),\"payload\":\(JSONWriter.string(String(decoding: job.payload, as: UTF8.self))),\"run_at\":\(job.runAt)}"
            workFields.append(Array(String(job.id, radix: 36).utf8))
            workFields.append(Array(value.utf8))
        }
        let flushed = executionMetrics?.take() ?? ExecutionMetricsSnapshot()
        let metricCommands = flushed.commands(now: now, keys: keys)
        // The Busy page's Threads: the jobs this process may hold now (transit tokens included).
        let concurrency = state.concurrency ?? self.concurrency
        let (identity, keys, ttl, info, queues) = (self.identity, self.keys, self.ttl, self.info(concurrency), self.queues)
        let cancelFrom = JSONWriter.float(now - Self.cancelWindowSeconds)
        func cmd(_ parts: [String]) -> [[UInt8]] { parts.map { Array($0.utf8) } }
        do throws(RedisError) {
            return try await worker.run { connection throws(RedisError) in
                let pingStart = ContinuousClock.now
                try connection.command(["PING"]).orThrow("PING")
                let rtt = ContinuousClock.now - pingStart
                let rttMicros = Int(rtt.components.seconds) * 1_000_000 + Int(rtt.components.attoseconds / 1_000_000_000_000)
                var commands: [[[UInt8]]] = [cmd(["MULTI"])]
                for key in [keys.workers(identity), keys.work(identity)] {
                    commands.append(cmd(["UNLINK", key]))
                    if !workFields.isEmpty {
                        commands.append(cmd(["HSET", key]) + workFields)
                        commands.append(cmd(["EXPIRE", key, String(ttl)]))
                    }
                }
                commands.append(cmd(["SADD", keys.processes, identity]))
                commands.append(
                    cmd([
                        "HSET", keys.process(identity), "info", info, "busy", String(busy.count),
                        "beat", JSONWriter.float(now), "rtt_us", String(rttMicros), "quiet", quiet ? "true" : "false",
                        "rss", String(rss), "concurrency", String(concurrency), "courier", courierField,
                    ]))
                commands.append(cmd(["EXPIRE", keys.process(identity), String(ttl)]))
                commands.append(cmd(["SADD", keys.inProgressOwners, identity]))
                commands.append(cmd(["SADD", keys.inProgressQueues(identity)] + queues))
                // Sidekiq 7's metrics with the beat they belong to: written once or not at all.
                for command in metricCommands { commands.append(cmd(command)) }
                commands.append(cmd(["EXEC"]))
                // Signals are popped (oldest first) outside the transaction so none is lost if EXEC fails.
                let signalsAt = commands.count
                commands.append(cmd(["RPOP", keys.signals(identity), "100"]))
                commands.append(cmd(["SCARD", keys.processes]))
                for set in [keys.retry, keys.schedule, keys.dead] { commands.append(cmd(["ZCARD", set])) }
                let cancelsAt = commands.count
                commands.append(cmd(["ZRANGEBYSCORE", keys.cancelRequests, cancelFrom, "+inf"]))
                commands.append(cmd(["ZREMRANGEBYSCORE", keys.cancelRequests, "-inf", "(" + cancelFrom]))
                let queuesAt = commands.count
                for queue in queues {
                    commands.append(cmd(["LLEN", keys.queue(queue)]))
                    commands.append(cmd(["LINDEX", keys.queue(queue), "-1"]))
                }
                let replies = try connection.pipeline(commands)
                for reply in replies { try reply.orThrow("heartbeat") }
                let signals = (replies[signalsAt].array ?? []).compactMap(\.string)
                let processCount = replies[signalsAt + 1].int ?? 1
                var sets: [String: Int] = [:]
                for (offset, name) in ["retry", "schedule", "dead"].enumerated() { sets[name] = replies[signalsAt + 2 + offset].int ?? 0 }
                let cancelRequests = (replies[cancelsAt].array ?? []).compactMap(\.string)
                var depth: [String: Int] = [:]
                var latency: [String: Double] = [:]
                var index = queuesAt
                for queue in queues {
                    depth[queue] = replies[index].int ?? 0
                    var age = 0.0
                    if let oldest = replies[index + 1].bytes, let enqueued = (try? JobPayload(raw: oldest))?.enqueuedAt {
                        age = max(0, now - enqueued)
                    }
                    latency[queue] = age
                    index += 2
                }
                return BeatResult(
                    signals: signals, processCount: max(1, processCount), depth: depth, latency: latency, sets: sets,
                    cancelRequests: cancelRequests)
            }
        } catch {
            // Whether the transaction ran cannot be known when the reply is lost; like the
            // outcomes the dispatcher keeps, the counts go with the next beat.
            executionMetrics?.restore(flushed)
            throw error
        }
    }

    /// At exit: leave the process list at once, as Sidekiq does (the hash itself expires).
    /// Also flushes the execution metrics counted since the last beat.
    public func clear() async throws(RedisError) {
        let (identity, keys) = (self.identity, self.keys)
        let flushed = executionMetrics?.take() ?? ExecutionMetricsSnapshot()
        let metricCommands = flushed.commands(now: clock.now(), keys: keys)
        do throws(RedisError) {
            _ = try await worker.run { connection throws(RedisError) in
                try connection.pipeline(
                    ([
                        ["SREM", keys.processes, identity], ["UNLINK", keys.workers(identity), keys.work(identity)],
                        ["HSET", keys.process(identity), "quiet", "true", "busy", "0"],
                    ] + metricCommands).map { $0.map { Array($0.utf8) } })
            }
        } catch {
            executionMetrics?.restore(flushed)
            throw error
        }
    }

    /// VmRSS of this process in KB (0 if unreadable).
    static func residentKilobytes() -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmRSS:") {
                return Int(text.dropFirst(6).filter(\.isNumber)) ?? 0
            }
        }
        return 0
    }
}
