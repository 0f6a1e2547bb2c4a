// The owner of one Redis connection: an actor on a serial executor of its
// own (a dispatch queue), so blocking hiredis calls never run on the
// cooperative pool; reconnects with backoff after a broken connection.
import CourierSupport
import Logging

/// Owns one `RedisConnection` on a serial executor of its own (a dispatch
/// queue), so blocking hiredis calls never run on Swift's cooperative thread
/// pool. Callers `await run { connection in ... }`.
///
/// A broken connection is dropped and re-made on the next call, with
/// exponential backoff between failed connects so a Redis outage is not
/// hammered; calls during the backoff fail fast with `.backingOff`.
public actor RedisWorker {
    /// Names the worker in logs and its dispatch queue (`courier.redis.NAME`), e.g. `"cancel"`.
    public nonisolated let name: String
    private let endpoint: RedisEndpoint
    private let timeouts: RedisTimeouts
    private let logger: Logger
    private let executor: any SerialExecutor
    private var connection: RedisConnection?
    private var failures = 0
    private var retryAt: ContinuousClock.Instant?
    private var downSince: ContinuousClock.Instant?

    /// The worker's own dispatch queue, so `run`'s blocking hiredis calls never take a cooperative-pool thread.
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Nothing connects until the first `run`; each worker has its own connection, and its own
    /// queue unless `executor` names the thread its calls run on (the dispatcher loop's).
    public init(
        name: String, endpoint: RedisEndpoint, timeouts: RedisTimeouts = RedisTimeouts(), logger: Logger, executor: (any SerialExecutor)? = nil
    ) {
        self.name = name
        self.endpoint = endpoint
        self.timeouts = timeouts
        self.logger = logger
        self.executor = executor ?? DispatchQueueExecutor(label: "courier.redis.\(name)")
    }

    /// Runs `body` with the connection, on this worker's own thread.
    public func run<T: Sendable>(_ body: (RedisConnection) throws(RedisError) -> T) throws(RedisError) -> T {
        let connection = try connected()
        do {
            return try body(connection)
        } catch {
            if connection.isBroken {
                self.connection = nil
                downSince = downSince ?? .now
                logger.warning("redis connection lost", metadata: ["worker": "\(name)", "error": "\(error.message)"])
            }
            throw error
        }
    }

    private func connected() throws(RedisError) -> RedisConnection {
        if let connection { return connection }
        let now = ContinuousClock.now
        if let retryAt, now < retryAt {
            throw RedisError(.backingOff, "reconnecting to \(endpoint.redacted) after \(failures) failed attempts")
        }
        do {
            let fresh = try RedisConnection(endpoint: endpoint, timeouts: timeouts)
            if let since = downSince {
                logger.notice("redis connection restored", metadata: ["worker": "\(name)", "down_for": "\(ContinuousClock.now - since)"])
            }
            connection = fresh
            failures = 0
            retryAt = nil
            downSince = nil
            return fresh
        } catch {
            failures += 1
            downSince = downSince ?? now
            // 50 ms doubling to 2 s, with jitter so many couriers do not reconnect in step.
            let base = min(2_000, 50 << min(failures - 1, 6))
            retryAt = now + .milliseconds(base / 2 + Int.random(in: 0...(base / 2)))
            if failures == 1 || failures % 20 == 0 {
                logger.warning("redis connect failed", metadata: ["worker": "\(name)", "error": "\(error.message)", "attempt": "\(failures)"])
            }
            throw error
        }
    }
}
