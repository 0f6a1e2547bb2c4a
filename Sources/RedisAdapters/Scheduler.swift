import JobDispatch
import Logging
import RedisClient
import SidekiqModel

// Moves due jobs from the `retry` and `schedule` sorted sets to their queues,
// as Sidekiq's poller does (sidekiq-compat §5). Each move is "remove from the
// set, push to the queue" in one script, done only if the remove succeeded,
// so with many couriers polling a job is enqueued exactly once.

enum SchedulerScripts {
    /// ARGV: prefix, now, then groups of (set, original, queue, replacement);
    /// queue "" means the entry is not a job: it goes to the dead set as it is.
    static let enqueueDue = RedisScript(
        name: "courier-enqueue-due",
        source: Scripts.addToDeadSet + #"""
            local prefix, now = ARGV[1], ARGV[2]
            local moved = 0
            for i = 3, #ARGV, 4 do
              local set, original, queue, replacement = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
              if redis.call('ZREM', prefix .. set, original) == 1 then
                if queue == '' then
                  addToDeadSet(prefix, now, original, now)
                else
                  redis.call('SADD', prefix .. 'queues', queue)
                  redis.call('LPUSH', prefix .. 'queue:' .. queue, replacement)
                  moved = moved + 1
                end
              end
            end
            return moved
            """#)
}

/// Sidekiq's poller (sidekiq-compat §5): moves due `retry` and `schedule` entries to their queues, up to 100 per script call.
/// Courier's scheduler loop calls it at `pollInterval` until the process is quiet; an entry that is not a job goes to the dead set.
public final class Scheduler: Sendable {
    private let worker: RedisWorker
    private let keys: SidekiqKeys
    private let clock: WallClock
    private let logger: Logger
    private let batch = 100

    /// `worker` is a connection of its own (polls must not wait behind fetches); `clock` decides what is due.
    public init(worker: RedisWorker, keys: SidekiqKeys, clock: WallClock = .system, logger: Logger) {
        self.worker = worker
        self.keys = keys
        self.clock = clock
        self.logger = logger
    }

    /// Enqueues every due job of both sets; returns how many moved.
    @discardableResult
    public func enqueueDue() async throws(RedisError) -> Int {
        var total = 0
        for set in ["retry", "schedule"] {
            while true {
                let now = clock.now()
                let (key, limit) = (keys.key(set), String(batch))
                let due = try await worker.run { connection throws(RedisError) in
                    try connection.command(["ZRANGEBYSCORE", key, "-inf", JSONWriter.float(now), "LIMIT", "0", limit]).orThrow("ZRANGEBYSCORE \(key)")
                }
                let entries = (due.array ?? []).compactMap(\.bytes)
                if entries.isEmpty { break }
                var args: [[UInt8]] = [Array(keys.key("").utf8), Array(JSONWriter.float(now).utf8)]
                for original in entries {
                    args.append(Array(set.utf8))
                    args.append(original)
                    if let payload = try? JobPayload(raw: original) {
                        args.append(Array((payload.queue ?? "default").utf8))
                        args.append(Self.readyToEnqueue(payload, now: now).raw)
                    } else {
                        logger.error(
                            "entry in \(set) is not a job; moved to the dead set",
                            metadata: ["entry": "\(String(decoding: original.prefix(200), as: UTF8.self))"])
                        args.append([])
                        args.append([])
                    }
                }
                let finalArgs = args
                let moved = try await worker.run { connection throws(RedisError) in
                    try connection.evaluate(SchedulerScripts.enqueueDue, args: finalArgs).int ?? 0
                }
                total += moved
                if entries.count < batch { break }
            }
        }
        return total
    }

    /// What Sidekiq's client does on push: a fresh `enqueued_at` (in the
    /// payload's own timestamp format) and no `at`.
    static func readyToEnqueue(_ payload: JobPayload, now: Double) -> JobPayload {
        let millis = payload["created_at"]?.isIntegerLiteral == true
        return payload.editing(set: [("enqueued_at", millis ? String(Int(now * 1000)) : JSONWriter.float(now))], remove: ["at"])
    }

    /// Sidekiq's poll interval: `average` (default 5 s × processes), randomised
    /// so that processes do not poll in step.
    public static func pollInterval(processCount: Int, average: Duration?) -> Duration {
        let avg = average.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 } ?? Double(max(1, processCount) * 5)
        let seconds = processCount < 10 ? avg * Double.random(in: 0..<1) + avg / 2 : avg * Double.random(in: 0..<1)
        return .milliseconds(Int(seconds * 1000))
    }
}
