// The circuit breaker in front of the executor, as a value without I/O: the
// dispatcher reports outcomes and asks whether it may fetch; every method
// that changes state returns the transition so the caller logs and counts it.
// Only executor failures count (unavailable, timed out): a job that raises
// is the job's problem, not the executor's.

/// When the executor breaker opens and how long it stays open; `--breaker-failures` and `--breaker-cooldown` set them.
public struct CircuitBreakerSettings: Sendable, Equatable {
    /// Consecutive executor failures that open the breaker.
    public var consecutiveFailures = 5
    /// Failure ratio over the last `window` outcomes that opens it…
    public var failureRatio = 0.5
    /// …counted over this many recent outcomes (and only once this many were seen).
    public var window = 20
    /// First cool-down; doubles with each trip in a row, up to `maxCooldown`.
    public var cooldown: Duration = .seconds(1)
    /// Longest cool-down; `--breaker-cooldown` sets it to 30 × the first.
    public var maxCooldown: Duration = .seconds(30)

    /// The defaults: open after 5 failures in a row or 50 % of the last 20; cool-down 1 s doubling up to 30 s.
    public init() {}
}

/// The breaker in front of the executor: a value the dispatcher core owns and steps with the time it passes in.
/// Only executor failures (`ExecutionOutcome.isExecutorFailure`) count, never a job's own error.
public struct CircuitBreaker: Sendable {
    /// `closed`: fetch freely; `open`: fetch nothing until the cool-down ends; `halfOpen`: one probe job decides.
    /// The raw values are the `state` label of `courier_breaker_state`.
    public enum State: String, Sendable { case closed, open, halfOpen = "half_open" }

    /// A change of state, returned to the caller to log and count.
    public struct Transition: Sendable, Equatable {
        /// The state before.
        public var from: State
        /// The state after.
        public var to: State
        /// Why, for the log, e.g. `5 executor failures in a row; cool-down 1.0 seconds`.
        public var reason: String
    }

    /// The thresholds it was made with.
    public let settings: CircuitBreakerSettings
    /// Changes only inside `allowance` (open → half-open when the cool-down is over) and `record`.
    public private(set) var state: State = .closed
    private var consecutive = 0
    private var recent: [Bool] = []  // true = executor failure
    private var trips = 0
    private var reopenAt: ContinuousClock.Instant?
    /// The job sent while half-open; only its result decides.
    private var probe: UInt64?

    /// A closed breaker.
    public init(settings: CircuitBreakerSettings = CircuitBreakerSettings()) {
        self.settings = settings
    }

    /// How many jobs may be started now (nil = no limit from the breaker).
    public mutating func allowance(now: ContinuousClock.Instant) -> (Int?, Transition?) {
        switch state {
        case .closed:
            return (nil, nil)
        case .open:
            guard let reopenAt, now >= reopenAt else { return (0, nil) }
            state = .halfOpen
            probe = nil
            return (1, Transition(from: .open, to: .halfOpen, reason: "cool-down over; one probe job decides"))
        case .halfOpen:
            return (probe == nil ? 1 : 0, nil)
        }
    }

    /// Until when the breaker stays open (for the dispatcher's sleep).
    public var openUntil: ContinuousClock.Instant? { state == .open ? reopenAt : nil }

    /// The dispatcher started job `id`; while half-open that job is the probe.
    public mutating func startedJob(_ id: UInt64) {
        if state == .halfOpen && probe == nil { probe = id }
    }

    /// Records one delivery's result for the executor. While half-open only
    /// the probe's result counts: a late result of a job started before the
    /// trip says nothing about the executor now.
    public mutating func record(_ id: UInt64, executorFailure: Bool, now: ContinuousClock.Instant) -> Transition? {
        if state == .halfOpen && id != probe { return nil }
        recent.append(executorFailure)
        if recent.count > settings.window { recent.removeFirst(recent.count - settings.window) }
        consecutive = executorFailure ? consecutive + 1 : 0
        switch state {
        case .halfOpen:
            if executorFailure { return trip(now: now, reason: "probe job failed") }
            state = .closed
            trips = 0
            consecutive = 0
            recent.removeAll()
            probe = nil
            return Transition(from: .halfOpen, to: .closed, reason: "probe job reached the executor")
        case .closed:
            if consecutive >= settings.consecutiveFailures {
                return trip(now: now, reason: "\(consecutive) executor failures in a row")
            }
            if recent.count >= settings.window {
                let ratio = Double(recent.filter { $0 }.count) / Double(recent.count)
                if ratio >= settings.failureRatio {
                    return trip(now: now, reason: "executor failure ratio \(Int(ratio * 100))% over the last \(recent.count) jobs")
                }
            }
            return nil
        case .open:
            return nil  // late results from before the trip do not change an open breaker
        }
    }

    private mutating func trip(now: ContinuousClock.Instant, reason: String) -> Transition {
        let from = state
        trips += 1
        var cooldown = settings.cooldown
        for _ in 1..<min(trips, 16) { cooldown = min(cooldown * 2, settings.maxCooldown) }
        state = .open
        reopenAt = now + cooldown
        probe = nil
        consecutive = 0
        recent.removeAll()
        return Transition(from: from, to: .open, reason: "\(reason); cool-down \(cooldown)")
    }
}
