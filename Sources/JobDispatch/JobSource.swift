import SidekiqModel

// The dispatcher's view of Redis: a source of jobs that it exchanges
// outcomes for new jobs with. The dispatcher logic sees only this protocol.

/// A job taken from a queue into this process's in-progress list.
public struct FetchedJob: Sendable, Equatable {
    public let queue: String
    /// The job's bytes exactly as they were in Redis.
    public let original: [UInt8]
    public let fetchedAt: ContinuousClock.Instant

    public init(queue: String, original: [UInt8], fetchedAt: ContinuousClock.Instant) {
        self.queue = queue
        self.original = original
        self.fetchedAt = fetchedAt
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
    public let job: FetchedJob
    public let action: CompletionAction
}

/// One round trip: record completions, then fetch up to `maxJobs`.
public struct ExchangeRequest: Sendable, Equatable {
    public var completions: [Completion]
    public var maxJobs: Int
    /// Remaining per-queue allowance (nil: no cap), in configured order.
    public var allowances: [String: Int]
}

public struct ExchangeReply: Sendable {
    public var jobs: [FetchedJob]
    /// Queues found empty during this fetch.
    public var emptyQueues: [String]

    public init(jobs: [FetchedJob], emptyQueues: [String]) {
        self.jobs = jobs
        self.emptyQueues = emptyQueues
    }
}

/// Where jobs come from and where their outcomes go.
public protocol JobSource: Sendable {
    func exchange(_ request: ExchangeRequest) async throws -> ExchangeReply
    /// After an exchange whose reply was lost: return to their queues any
    /// in-progress jobs that are not in `running`.
    func reconcile(running: [FetchedJob]) async throws -> Int
}
