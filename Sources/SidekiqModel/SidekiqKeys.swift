// Every Redis key Courier reads or writes, in one place. Sidekiq's own keys
// follow its layout exactly (sidekiq-compat §2.1); Courier's private keys live
// under `courier:` so nothing Sidekiq or Sidekiq Pro owns is touched. An
// optional namespace prefixes every key, as redis-namespace does.

public struct SidekiqKeys: Sendable, Equatable {
    public let namespace: String?
    private let prefix: String

    public init(namespace: String? = nil) {
        let ns = namespace.flatMap { $0.isEmpty ? nil : $0 }
        self.namespace = ns
        self.prefix = ns.map { "\($0):" } ?? ""
    }

    public func key(_ name: String) -> String { prefix + name }

    public func queue(_ name: String) -> String { prefix + "queue:" + name }
    public var queues: String { prefix + "queues" }
    public var schedule: String { prefix + "schedule" }
    public var retry: String { prefix + "retry" }
    public var dead: String { prefix + "dead" }
    public var processes: String { prefix + "processes" }
    public var processed: String { prefix + "stat:processed" }
    public var failed: String { prefix + "stat:failed" }
    public func processed(day: String) -> String { prefix + "stat:processed:" + day }
    public func failed(day: String) -> String { prefix + "stat:failed:" + day }
    public func process(_ identity: String) -> String { prefix + identity }
    /// Work entries: `:workers` for Sidekiq ≤ 6.4.1 readers, `:work` for 6.4.2+.
    public func workers(_ identity: String) -> String { prefix + identity + ":workers" }
    public func work(_ identity: String) -> String { prefix + identity + ":work" }
    public func signals(_ identity: String) -> String { prefix + identity + "-signals" }

    /// Set of process identities that may own in-progress lists.
    public var inProgressOwners: String { prefix + "courier:wip" }
    /// Set of queue names a process has in-progress lists for.
    public func inProgressQueues(_ identity: String) -> String { prefix + "courier:wip:" + identity }
    /// The in-progress list of one process for one queue (reliable fetch).
    public func inProgress(_ identity: String, queue: String) -> String { prefix + "courier:wip:" + identity + ":" + queue }
    /// How often a job (by SHA-1 of its bytes) was recovered from a dead process.
    public func recoveries(_ sha: String) -> String { prefix + "courier:recovered:" + sha }
    /// Sorted set of cancel requests: member = jid, score = when it was asked (epoch seconds).
    public var cancelRequests: String { prefix + "courier:cancel" }
}
