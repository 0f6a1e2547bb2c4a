import ExecutorProtocol
import Logging

// The vocabulary between the dispatcher's decisions (DispatchCore, a value
// without I/O) and the loop that carries them out (Dispatcher): each event
// the core takes returns a Turn — side effects to perform now, and the one
// step the loop takes next. Tests read Turns instead of watching Redis.

/// The one thing the loop does next; the core hears back how it went.
enum DispatchStep: Sendable, Equatable {
    /// Ask the core again at once (`next`).
    case proceed
    /// Take every watcher out of Redis (await it), then `proceed`.
    case quiesceWatchers
    /// After a lost reply: push back the in-progress jobs not in `held`; then `reconciled` or `roundTripFailed`.
    case reconcile(held: [FetchedJob])
    /// One round trip: record completions and fetch; then `exchanged` or `roundTripFailed`.
    case exchange(ExchangeRequest)
    /// Until an event wakes the loop or `until` passes (nil: no timeout).
    case wait(until: ContinuousClock.Instant?)
    /// Sleep until then whatever happens (backoff after a Redis failure).
    case backoff(until: ContinuousClock.Instant)
    /// Every job is acknowledged or pushed back (or left for recovery): return.
    case finish
}

/// One job handed to the executor.
struct Delivery: Sendable {
    let id: UInt64
    let request: ExecutionRequest
    /// For the `start` log line (debug).
    let jobClass: String
    let tenant: String?
    /// Enqueue → start, in seconds (nil without `enqueued_at`).
    let latency: Double?
}

/// A decision to log, count and (when exhausted) hand to the executor's hooks.
struct JobReport: Sendable {
    let entry: RunningJob
    /// nil: the job never reached the executor (malformed, poison pill, picked up while not accepting work).
    let outcome: ExecutionOutcome?
    let decision: Decision
    let seconds: Double
}

/// Side effects of one turn, performed in order before the step.
enum DispatchAction: Sendable {
    case deliver([Delivery])
    case report(JobReport)
    /// Ask the executor to interrupt this job (protocol v1 cancel).
    case cancel(RunningJob, CancelReason)
    case breakerChanged(CircuitBreaker.Transition)
    case arm(queue: String, mode: WatchMode)
    /// Take back the tokens that armed claims hold.
    case disarmClaims
    case log(Logger.Level, String, Logger.Metadata)
    /// A round trip succeeded; `inFlight` jobs are held now.
    case roundTripDone(inFlight: Int)
    /// A round trip failed with an error of this kind (`Error.metricKind`).
    case roundTripFailed(kind: String)
}

struct Turn: Sendable {
    var actions: [DispatchAction] = []
    var step: DispatchStep = .proceed
}

/// What the core needs to know of the queue watchers, read just before a turn.
struct WatcherView: Sendable, Equatable {
    /// Tokens held by armed claims.
    var reservedTokens = 0
    /// No watcher armed, inside Redis or holding a token.
    var isDisarmed = true
    /// Queues whose watcher holds a token (for per-queue caps).
    var holdingQueues: Set<String> = []
}
