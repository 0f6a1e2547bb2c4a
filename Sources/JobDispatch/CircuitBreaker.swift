// The circuit breaker in front of the executor, as a value without I/O: the
// dispatcher reports outcomes and asks whether it may fetch; every method
// that changes state returns the transition so the caller logs and counts it.
// Only executor failures count (unavailable, timed out): a job that raises
// is the job's problem, not the executor's.

public struct CircuitBreakerSettings: Sendable, Equatable {
    /// Consecutive executor failures that open the breaker.
    public var consecutiveFailures = 5
    /// Failure ratio over the last `window` outcomes that opens it…
    public var failureRatio = 0.5
    /// …counted over this many recent outcomes (and only once this many were seen).
    public var window = 20
    /// First cool-down; doubles with each trip in a row, up to `maxCooldown`.
    public var cooldown: Duration = .seconds(1)
    public var maxCooldown: Duration = .seconds(30)

    public init() {}
}

public struct CircuitBreaker: Sendable {
    public enum State: String, Sendable { case closed, open, halfOpen = "half_open" }

    public struct Transition: Sendable, Equatable {
        public var from: State
        public var to: State
        public var reason: String
    }

    public let settings: CircuitBreakerSettings
    public private(set) var state: State = .closed
    private var consecutive = 0
    private var recent: [Bool] = []  // true = executor failure
    private var trips = 0
    private var reopenAt: ContinuousClock.Instant?
    /// The job sent while half-open; only its result decides.
    private var probe: UInt64?

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
