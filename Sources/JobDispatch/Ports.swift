// The dispatcher's ports besides the job source and the executor: what it
// counts (metrics) and the queue watchers that give it pickup without
// polling. The dispatcher sees only these protocols; the Prometheus registry
// (Ops) and the Redis-backed watchers (RedisAdapters) implement them.

/// What the dispatcher counts. Ops' Prometheus registry implements it.
public protocol DispatchMetrics: Sendable {
    /// A job's delivery ended with `outcome` (a `DecisionEvent` raw value). `tenant` nil: the job has none;
    /// `seconds` nil: the job never ran; `latency`: enqueue → start in seconds (nil: not delivered, or no `enqueued_at`).
    /// Called once per job: one lock, no allocation once its series exist.
    func jobFinished(queue: String, jobClass: String, outcome: String, tenant: String?, seconds: Double?, latency: Double?)
    /// Jobs held after a round trip (`courier_jobs_in_flight`).
    func setInFlight(_ count: Int)
    /// The circuit breaker moved to `state` (closed, open, half_open).
    func breaker(_ state: String)
    /// A Redis call failed (`courier_redis_errors_total{kind}`): `kind` is the error's `metricKind`
    /// (connection, timeout, reply, script, other).
    func redisError(_ kind: String)
    /// An executor problem by kind: http, unavailable, timeout.
    func executorError(_ kind: String)
    /// An exchange with Redis completed (`courier_redis_round_trips_total`).
    func roundTrip()
    /// `count` jobs of a class over its cluster-wide limiter went to the schedule set (`courier_limiter_deferred_total`).
    func limiterDeferred(_ count: Int)
    /// An exhausted-hook call ended: ok, retried, failed.
    func exhaustedHook(_ result: String)
    /// A cancel request ended: `reason` a `CancelReason` raw value, `result` a `CancelResult.label`.
    func cancel(reason: String, result: String)
}

/// How a queue's watcher is armed.
public enum WatchMode: Sendable, Equatable {
    /// Not armed; nothing waits on the queue.
    case off
    /// Wake the dispatcher when the queue has a job.
    case look
    /// Move the job into the in-progress list with a token held for it, and hand it over.
    case claim
}

/// Callbacks from the watchers to the dispatcher (on a watcher's own thread).
public struct WatchHandlers: Sendable {
    /// A look found work: wake the dispatcher.
    public var onWork: (@Sendable () -> Void)?
    /// A claim moved this job into the in-progress list.
    public var onClaim: (@Sendable (FetchedJob) -> Void)?
    /// A claim's reply was lost: the job may sit in the in-progress list unseen.
    public var onClaimLost: (@Sendable () -> Void)?

    /// A handler left nil ignores its event.
    public init(
        onWork: (@Sendable () -> Void)? = nil, onClaim: (@Sendable (FetchedJob) -> Void)? = nil,
        onClaimLost: (@Sendable () -> Void)? = nil
    ) {
        self.onWork = onWork
        self.onClaim = onClaim
        self.onClaimLost = onClaimLost
    }
}

/// Blocking watchers on empty queues (see RedisAdapters' `QueueWatchers`).
public protocol QueueWatching: AnyObject, Sendable {
    /// Installs the dispatcher's callbacks; the dispatcher's init calls it, before anything is armed.
    func setHandlers(_ handlers: WatchHandlers)
    /// Tokens held by armed claims (not available to fetches).
    var reservedTokens: Int { get }
    /// Whether this queue's watcher holds a token (for per-queue caps).
    func holdsToken(_ queue: String) -> Bool
    /// Arms the watcher of `queue` (`.off` does nothing; a look does not weaken an armed claim); does not wait.
    func arm(_ queue: String, _ mode: WatchMode)
    /// Disarms every claim (or every watcher); does not wait.
    func disarm(claimsOnly: Bool)
    /// No watcher armed, inside Redis or holding a token.
    var isDisarmed: Bool { get }
    /// Disarms everything and waits (bounded) until no watcher is inside Redis.
    func quiesce() async
}
