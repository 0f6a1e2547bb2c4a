// The heartbeat's part in cluster-wide limiters (docs/limiters.md): this
// courier's concurrent-limiter leases are renewed each beat, so a lease
// outlives a long job but lapses `lock_timeout` seconds after its courier's
// last beat; and the declarations are published for `courier status`.
// Taking and releasing leases happens in the exchange script.
import RedisClient
import SidekiqModel

/// Renews this process's leases of concurrent limiters and publishes the declarations, one script call per heartbeat.
public struct LimiterLeases: Sendable {
    private let worker: RedisWorker
    private let prefix: String
    private let identity: String
    /// The script's arguments after `now`: the concurrent limiters' lock timeouts, then every declaration (the same each beat).
    private let declarations: [String]
    private let clock: WallClock

    /// Nil without limiters (nothing to renew or publish).
    public init?(worker: RedisWorker, keys: SidekiqKeys, identity: String, limiters: Limiters, clock: WallClock = .system) {
        guard !limiters.isEmpty else { return nil }
        self.worker = worker
        self.prefix = keys.key("")
        self.identity = identity
        self.clock = clock
        let concurrent = limiters.all.filter { $0.kind == .concurrent }
        declarations =
            [String(concurrent.count)] + concurrent.flatMap { [$0.name, String($0.lockTimeout)] } + limiters.all.flatMap { [$0.name, $0.json] }
    }

    /// Pushes every lease this process holds to now + its limiter's lock timeout; returns how many it renewed.
    @discardableResult
    public func renew() async throws(RedisError) -> Int {
        let final = ([prefix, identity, JSONWriter.float(clock.now())] + declarations).map { Array($0.utf8) }
        return try await worker.run { connection throws(RedisError) in
            try connection.evaluate(Scripts.renewLeases, args: final).int ?? 0
        }
    }
}
