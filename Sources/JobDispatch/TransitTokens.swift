import ExecutorProtocol

// Tokens for jobs in transit. A token is held from the fetch to the recorded
// outcome, but the executor's thread is busy only while the job runs: the
// round trip to Redis, the request, the executor's hand-off to a thread and
// the answer's way back are token time its threads sit idle. For a queue of
// 2 ms jobs that is a quarter or more of each token's time (measured: 7.6 ms
// outside `perform` a job, against Sidekiq's 2 ms), so with as many tokens as
// the executor has threads, a quarter of its threads idle.
//
// So when the concurrency was not set for courier itself (`-c`,
// COURIER_CONCURRENCY), courier sizes its tokens from the executor's
// advertised capacity: at least that many always (the Sidekiq file's
// concurrency, RAILS_MAX_THREADS or the default 10 may be fewer), and a
// quarter more while jobs are short lately. The excess waits in the
// executor's queue (the sidecar's job pool, FIFO; cancellable, and its job
// timeout runs): the executor's capacity, not the token count, bounds what
// runs at once, so the app's threads and connection pools are sized as
// before. Long jobs get no excess: a job waiting a whole job's time in one
// executor could have run on another replica. Pure: the dispatcher asks it
// at every turn, from the last health answer.

/// How many tokens courier may hold beyond its base concurrency.
public enum TransitTokens {
    /// Tokens beyond the base concurrency: up to the executor's capacity, and for jobs in transit.
    public struct Allowance: Sendable, Equatable {
        /// Always: the base concurrency raised to the executor's capacity.
        public var toCapacity: Int
        /// While jobs are short: a quarter of the capacity more.
        public var inTransit: Int

        public static let none = Allowance(toCapacity: 0, inTransit: 0)

        public init(toCapacity: Int, inTransit: Int) {
            self.toCapacity = toCapacity
            self.inTransit = inTransit
        }
    }

    /// The share of the executor's capacity kept in flight on top of it.
    static let shareOfCapacity = 4  // one in four: capacity + capacity/4
    /// The most tokens added, whatever the capacity (each may be one open connection).
    public static let maxExtra = 1024
    /// Jobs averaging (fetch to answer) under this get the transit tokens.
    static let shortJobSeconds = 1.0

    /// The tokens the executor's health allows over `base`: none when the concurrency
    /// was set for courier (`explicit`) or the executor does not say its capacity.
    public static func allowed(base: Int, explicit: Bool, health: ExecutorHealth?) -> Allowance {
        guard !explicit, let health, health.offersStreams, let capacity = health.capacity else { return .none }
        let toCapacity = min(maxExtra, max(0, capacity - base))
        let wanted = capacity + (capacity + shareOfCapacity - 1) / shareOfCapacity
        return Allowance(toCapacity: toCapacity, inTransit: min(maxExtra, max(0, wanted - base)) - toCapacity)
    }

    /// The tokens beyond the base in use now: `toCapacity`, and `inTransit` while the
    /// jobs ended lately were short (none before any ended).
    static func inUse(_ allowance: Allowance, recentJobSeconds: Double?) -> Int {
        guard let recent = recentJobSeconds, recent < shortJobSeconds else { return allowance.toCapacity }
        return allowance.toCapacity + allowance.inTransit
    }
}
