// Every Redis key Courier reads or writes, in one place. Sidekiq's own keys
// follow its layout exactly (sidekiq-compat §2.1); Courier's private keys live
// under `courier:` so nothing Sidekiq or Sidekiq Pro owns is touched. An
// optional namespace prefixes every key, as redis-namespace does.

/// Every Redis key Courier uses, in Sidekiq's layout (sidekiq-compat §2.1), with the optional namespace in front.
public struct SidekiqKeys: Sendable, Equatable {
    /// The redis-namespace prefix without its colon (Sidekiq 6 only), or nil for none.
    public let namespace: String?
    private let prefix: String

    /// Keys under `namespace:` (an empty namespace means none).
    public init(namespace: String? = nil) {
        let ns = namespace.flatMap { $0.isEmpty ? nil : $0 }
        self.namespace = ns
        self.prefix = ns.map { "\($0):" } ?? ""
    }

    /// Any key with the namespace applied; `key("")` is the bare prefix the Lua scripts add themselves.
    public func key(_ name: String) -> String { prefix + name }

    /// The list a queue's jobs wait in: `queue:NAME` (`name` without the prefix).
    public func queue(_ name: String) -> String { prefix + "queue:" + name }
    /// Set of every queue name clients have pushed to (the Web UI's queue list).
    public var queues: String { prefix + "queues" }
    /// Sorted set of scheduled jobs, score = run time in epoch seconds.
    public var schedule: String { prefix + "schedule" }
    /// Sorted set of jobs waiting to be retried, score = retry time in epoch seconds.
    public var retry: String { prefix + "retry" }
    /// Sorted set of dead jobs (the morgue), score = death time in epoch seconds.
    public var dead: String { prefix + "dead" }
    /// Set of process identities (added at every beat); the Web UI's Busy page lists them.
    public var processes: String { prefix + "processes" }
    /// All-time processed count (`stat:processed`), only ever added to with INCRBY.
    public var processed: String { prefix + "stat:processed" }
    /// All-time failed count (`stat:failed`), only ever added to with INCRBY.
    public var failed: String { prefix + "stat:failed" }
    /// Daily processed counter; `day` is `YYYY-MM-DD` in UTC (`WallClock.utcDay`).
    public func processed(day: String) -> String { prefix + "stat:processed:" + day }
    /// Daily failed counter; `day` is `YYYY-MM-DD` in UTC (`WallClock.utcDay`).
    public func failed(day: String) -> String { prefix + "stat:failed:" + day }
    /// The process hash (`info`, `busy`, `beat`, …) of `identity` (sidekiq-compat §2.2).
    public func process(_ identity: String) -> String { prefix + identity }
    /// Work entries: `:workers` for Sidekiq ≤ 6.4.1 readers, `:work` for 6.4.2+.
    public func workers(_ identity: String) -> String { prefix + identity + ":workers" }
    /// See `workers(_:)`: the same entries under the 6.4.2+ name.
    public func work(_ identity: String) -> String { prefix + identity + ":work" }
    /// The list the Web UI pushes Quiet/Stop (`TSTP`/`TERM`) and `TTIN` signals to.
    public func signals(_ identity: String) -> String { prefix + identity + "-signals" }

    /// Set of process identities that may own in-progress lists.
    public var inProgressOwners: String { prefix + "courier:wip" }
    /// Set of queue names a process has in-progress lists for.
    public func inProgressQueues(_ identity: String) -> String { prefix + "courier:wip:" + identity }
    /// The in-progress list of one process for one queue (reliable fetch).
    public func inProgress(_ identity: String, queue: String) -> String { prefix + "courier:wip:" + identity + ":" + queue }
    /// How often a job (by SHA-1 of its bytes) was recovered from a dead process.
    public func recoveries(_ sha: String) -> String { prefix + "courier:recovered:" + sha }
    /// The periodic-job leader lease: the holder's identity, with a PX expiry renewed while it lives.
    public var periodicLeader: String { prefix + "courier:periodic:leader" }
    /// One periodic tick, set NX when it is enqueued (value: the job's jid), so each tick is enqueued once.
    public func periodicTick(_ name: String, at epoch: Int) -> String { prefix + "courier:periodic:tick:" + name + ":" + String(epoch) }
    /// Hash: periodic job name → the latest tick enqueued (epoch seconds).
    public var periodicLast: String { prefix + "courier:periodic:last" }
    /// Hash: periodic job name → JSON of its declaration and next run, written by the leader for `courier status`.
    public var periodicJobs: String { prefix + "courier:periodic:jobs" }
    /// Hash: limiter name → JSON of its declaration, written by every courier that has it at each beat (for `courier status`).
    public var limiters: String { prefix + "courier:limiters" }
    /// A concurrent limiter's leases: member = lease, score = when it lapses (epoch seconds).
    public func limiterLeases(_ name: String) -> String { prefix + "courier:limit:" + name + ":leases" }
    /// A window limiter's starts: score = when each started.
    public func limiterWindow(_ name: String) -> String { prefix + "courier:limit:" + name + ":window" }
    /// A bucket limiter's starts in bucket `index` (`floor(now / interval)`).
    public func limiterBucket(_ name: String, _ index: Int) -> String { prefix + "courier:limit:" + name + ":bucket:" + String(index) }
    /// Sorted set of cancel requests: member = jid, score = when it was asked (epoch seconds).
    public var cancelRequests: String { prefix + "courier:cancel" }
}
