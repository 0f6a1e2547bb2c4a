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
    private let limiters: [Limiter]
    private let clock: WallClock

    /// Nil without limiters (nothing to renew or publish).
    public init?(worker: RedisWorker, keys: SidekiqKeys, identity: String, limiters: Limiters, clock: WallClock = .system) {
        guard !limiters.isEmpty else { return nil }
        self.worker = worker
        self.prefix = keys.key("")
        self.identity = identity
        self.limiters = limiters.all
        self.clock = clock
    }

    /// Pushes every lease this process holds to now + its limiter's lock timeout; returns how many it renewed.
    @discardableResult
    public func renew() async throws(RedisError) -> Int {
        let concurrent = limiters.filter { $0.kind == .concurrent }
        var args = [prefix, identity, JSONWriter.float(clock.now()), String(concurrent.count)]
        for limiter in concurrent { args += [limiter.name, String(limiter.lockTimeout)] }
        for limiter in limiters { args += [limiter.name, limiter.json] }
        let final = args.map { Array($0.utf8) }
        return try await worker.run { connection throws(RedisError) in
            try connection.evaluate(Scripts.renewLeases, args: final).int ?? 0
        }
    }
}
