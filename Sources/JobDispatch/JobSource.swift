import SidekiqModel

// The dispatcher's view of Redis: a source of jobs that it exchanges
// outcomes for new jobs with. The dispatcher logic sees only this protocol.

/// A job taken from a queue into this process's in-progress list.
public struct FetchedJob: Sendable, Equatable {
    /// Queue name without the `queue:` prefix; also names the in-progress list the job sits in.
    public let queue: String
    /// The job's bytes exactly as they were in Redis.
    public let original: [UInt8]
    /// When the job was moved into the in-progress list (monotonic clock).
    public let fetchedAt: ContinuousClock.Instant
    /// The slot it holds of concurrent limiters (an opaque name, given back with its completion); nil: none.
    public let lease: String?

    /// A job as the exchange script, a queue watcher's claim or recovery returned it.
    public init(queue: String, original: [UInt8], fetchedAt: ContinuousClock.Instant, lease: String? = nil) {
        self.queue = queue
        self.original = original
        self.fetchedAt = fetchedAt
        self.lease = lease
    }
}

/// What to do with a job whose delivery ended. Every case first removes the
/// job from the in-progress list; that is the acknowledgement.
public enum CompletionAction: Sendable, Equatable {
    /// Done; counts as processed.
    case acknowledge
    /// Failed and not retried (`retry: false`, `dead: false`, discard): processed + failed.
    case acknowledgeFailed
    /// Back to the head of its queue, untouched; no stats (executor unavailable).
    case requeue
    /// Back to the head of its queue at a shutdown deadline; counts processed + failed as Sidekiq does.
    case requeueAtShutdown
    /// Into the `retry` set at `at` (epoch seconds) with the updated payload: processed + failed.
    case retry(payload: [UInt8], at: Double)
    /// Into the `dead` set at `at`: processed + failed.
    case kill(payload: [UInt8], at: Double)
    /// Not a job at all (bad JSON): raw into the `dead` set, no stats, as Sidekiq does.
    case bury(at: Double)
}

/// One completed delivery to record.
public struct Completion: Sendable, Equatable {
    /// The job as it was fetched (its `original` bytes find it in the in-progress list).
    public let job: FetchedJob
    /// Where it goes and what it counts.
    public let action: CompletionAction
}

/// One round trip: record completions, then fetch up to `maxJobs`.
public struct ExchangeRequest: Sendable, Equatable {
    /// Outcomes to write first, in the order they were decided.
    public var completions: [Completion]
    /// Jobs to fetch at most: free tokens (concurrency − held − reserved by claims), 0 when stopping, paused or the breaker is open.
    public var maxJobs: Int
    /// Remaining allowance of each capped queue, by name; a queue not listed has no cap.
    public var allowances: [String: Int]
}

/// What an exchange fetched.
public struct ExchangeReply: Sendable {
    /// The jobs fetched, in the order they were taken.
    public var jobs: [FetchedJob]
    /// Queues found empty during this fetch.
    public var emptyQueues: [String]
    /// What cluster-wide limiters held back in this fetch.
    public var limited: LimitedFetch
    /// Jobs of a class over its limiter, moved to the schedule set for later.
    public var deferred: Int

    /// A reply as a `JobSource` returns it (the Redis source builds it from the exchange script's answer).
    public init(jobs: [FetchedJob], emptyQueues: [String], limited: LimitedFetch = LimitedFetch(), deferred: Int = 0) {
        self.jobs = jobs
        self.emptyQueues = emptyQueues
        self.limited = limited
        self.deferred = deferred
    }
}

/// The queues a fetch left alone because a cluster-wide limiter of theirs was full (their jobs stay in them).
public struct LimitedFetch: Sendable, Equatable {
    /// Queues not fetched from.
    public var queues: [String]
    /// When one of those limiters may have room again (the script's hint); nil: none was full.
    public var recheck: Duration?

    public init(queues: [String] = [], recheck: Duration? = nil) {
        self.queues = queues
        self.recheck = recheck
    }
}

/// Where jobs come from and where their outcomes go.
public protocol JobSource: Sendable {
    /// Records `request.completions` (removing each from the in-progress list), then fetches; one round trip, called only from the dispatcher loop.
    func exchange(_ request: ExchangeRequest) async throws -> ExchangeReply
    /// After an exchange whose reply was lost: return to their queues any
    /// in-progress jobs that are not in `running`; returns how many went back.
    func reconcile(running: [FetchedJob]) async throws -> Int
}
