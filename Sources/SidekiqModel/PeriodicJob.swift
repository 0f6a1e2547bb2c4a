// Periodic jobs as values: one declared job (schedule, class, queue, args),
// the payload Sidekiq's client would push for it, and the decision "which
// ticks does the leader enqueue now" (the missed-tick policy), without I/O.

/// One entry of the `periodic:` section of sidekiq.yml.
public struct PeriodicJob: Sendable, Equatable {
    /// The entry's name: part of its Redis keys and of log lines.
    public let name: String
    public let schedule: CronSchedule
    /// The job class, as Sidekiq's `class` (a Sidekiq job class name).
    public let jobClass: String
    public let queue: String
    /// `args` as JSON array text.
    public let argsJSON: String
    /// `retry` as JSON text (`true`, `false`, a number); Sidekiq's default is `true`.
    public let retryJSON: String
    /// A tick not enqueued within this many seconds after its time is skipped (the missed-tick policy).
    public let grace: Int

    public init(
        name: String, schedule: CronSchedule, jobClass: String, queue: String = "default", argsJSON: String = "[]",
        retryJSON: String = "true", grace: Int = PeriodicJob.defaultGrace
    ) {
        self.name = name
        self.schedule = schedule
        self.jobClass = jobClass
        self.queue = queue
        self.argsJSON = argsJSON
        self.retryJSON = retryJSON
        self.grace = grace
    }

    /// 60 s: a leader's death (lease expiry plus a loop) fits well inside it; a longer outage skips.
    public static let defaultGrace = 60

    /// How long a tick's key lives: past the grace window (so no later leader re-enqueues the tick)
    /// plus 10 minutes of tolerated clock skew between couriers.
    public var tickKeyTTL: Int { grace + 600 }

    /// The payload Sidekiq 6's client pushes for `Sidekiq::Client.push("class" => …, "args" => …)`:
    /// its key order, a 24-hex `jid`, `created_at` and `enqueued_at` as float seconds.
    public func payload(jid: String, now: Double) -> [UInt8] {
        let time = JSONWriter.float(now)
        let text =
            #"{"retry":\#(retryJSON),"queue":\#(JSONWriter.string(queue)),"args":\#(argsJSON),"class":\#(JSONWriter.string(jobClass)),"#
            + #""jid":"\#(jid)","created_at":\#(time),"enqueued_at":\#(time)}"#
        return Array(text.utf8)
    }

    /// A fresh jid as Sidekiq makes it (`SecureRandom.hex(12)`).
    public static func newJID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<12).map { _ in
            let b = UInt8.random(in: 0...255, using: &generator)
            return (b < 16 ? "0" : "") + String(b, radix: 16)
        }.joined()
    }
}

/// The leader's decision for one job at one moment.
public struct PeriodicPlan: Sendable, Equatable {
    /// Ticks (epoch seconds) to enqueue now, oldest first; each is enqueued at most once whoever sends it.
    public var due: [Int]
    /// Ticks after `since` that are older than the grace window: skipped, only counted for the log.
    public var skipped: Int

    public init(due: [Int], skipped: Int) {
        self.due = due
        self.skipped = skipped
    }

    /// Ticks in `(max(since, now - grace), now]`. `since` is the last tick known to be handled (this
    /// leader's memory, or Redis' `last` hash after gaining the lease); nil for a job never enqueued
    /// before, which starts at this pass (the tick of this very second at most: no backfill).
    /// At most `limit` ticks per call (a per-second job after a long outage does not flood one pass).
    public static func plan(_ job: PeriodicJob, now: Int, since: Int?, limit: Int = 500) -> PeriodicPlan {
        let windowStart = now - job.grace
        let from = since.map { max($0, windowStart) } ?? (now - 1)
        let due = job.schedule.fireTimes(after: from, through: now, limit: limit)
        var skipped = 0
        if let since, since < windowStart {
            skipped = job.schedule.fireTimes(after: since, through: windowStart, limit: 100_000).count
        }
        return PeriodicPlan(due: due, skipped: skipped)
    }
}
