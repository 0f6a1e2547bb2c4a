import ExecutorProtocol
import Logging
import SidekiqModel

// The dispatcher's state and decisions as one value without I/O: which jobs
// it holds (and which it fetched ahead of a free token), the shutdown phase, the circuit breaker, an executor's
// Retry-After pause, what waits to be recorded in Redis. Events from any
// thread (outcomes, claims, quiet/stop, a lost claim) go in through its
// methods under the Dispatcher's lock; the loop asks it for the next Turn
// (DispatchCore+Turns.swift). Time is always an argument, so tests step it.

/// Its fields are changed only by its own methods (here and in DispatchCore+Turns.swift).
struct DispatchCore: Sendable {
    typealias Phase = Dispatcher.Phase

    let settings: DispatcherSettings
    let policy: OutcomePolicy

    var phase: Phase = .running
    var breaker: CircuitBreaker
    var running = RunningJobs()
    /// The executor asked to wait (Retry-After) until then: nothing is fetched or claimed.
    var pausedUntil: ContinuousClock.Instant?
    /// A lost reply (an exchange's or a claim's): push back unknown in-progress jobs before fetching.
    var needsReconcile = false
    /// When the first shutdown cancel went out (the loop gives cancels about a second from then).
    var shutdownCancelsSent: ContinuousClock.Instant?

    var nextID: UInt64 = 1
    /// Completions waiting for the next round trip, oldest first.
    var pending: [(id: UInt64, completion: Completion)] = []
    /// How many of `pending` the round trip under way carries (events may append meanwhile).
    var sending = 0
    /// What the round trip under way asked for, for reading its reply.
    var asked = ExchangeRequest(completions: [], maxJobs: 0, allowances: [:])
    /// Outcomes reported by the executor since the last turn.
    var arrived: [(UInt64, ExecutionOutcome)] = []
    /// Jobs with a decision made for them that never reach the executor.
    var adopted: [(FetchedJob, Decision)] = []
    var crashCounts: [String: Int] = [:]
    var redisFailures = 0
    /// A claim delivered a job since the last turn (its queue may have more).
    var claimDelivered = false
    /// The loop's task was cancelled: nothing waits for Redis any more.
    var abandoned = false
    /// Jobs one request should carry (the delivery plan's size; 1: no coalescing).
    var coalesceTarget = 1
    /// Tokens the executor's capacity allows beyond the concurrency (TransitTokens.allowed).
    var transitTokensAllowed = TransitTokens.Allowance.none
    /// The last fetch got all it asked for: the queues likely hold more (a backlog).
    var backlog = false
    /// Since when a fetch has been held back to gather tokens for a fuller request.
    var coalescingSince: ContinuousClock.Instant?
    /// The longest a fetch (and the completions going with it) is held back for company.
    static let maxCoalesce: Duration = .milliseconds(3)
    /// Jobs fetched ahead of a free token, in fetch order: under a backlog of quick jobs each
    /// starts the moment a token frees, while the round trip that records the last outcomes
    /// and fetches the next ones runs beside the executor instead of between its jobs. They
    /// sit in this process's in-progress lists like every job held, so nothing is lost.
    var ahead: [ParsedJob] = []
    /// When the oldest of `ahead` was fetched.
    var aheadSince: ContinuousClock.Instant?
    /// Since when `ahead` has waited for enough free tokens to fill a request.
    var aheadHeldSince: ContinuousClock.Instant?
    /// Average run time of the jobs that ended lately, in seconds (nil before the first).
    var recentJobSeconds: Double?
    /// Jobs are fetched ahead only while they run shorter than this on average: then a round
    /// trip is a large share of each job's time, and a job fetched ahead waits little.
    static let fetchAheadBelow = 0.02
    /// A job fetched ahead that found no token for this long goes back to its queue (jobs
    /// turned slow), so another process may run it.
    static let maxAheadWait: Duration = .seconds(1)

    init(settings: DispatcherSettings, policy: OutcomePolicy) {
        self.settings = settings
        self.policy = policy
        self.breaker = CircuitBreaker(settings: settings.breaker)
    }

    // MARK: - Events from any thread

    /// Stop fetching; in-flight jobs finish. False if already quiet or stopping.
    mutating func quiet() -> Bool {
        guard phase == .running else { return false }
        phase = .quiet
        return true
    }

    /// Quiet, and push back what still runs at `deadline` (an earlier deadline given before stays).
    mutating func stop(deadline: ContinuousClock.Instant) {
        if case let .stopping(existing) = phase, existing <= deadline { return }
        phase = .stopping(deadline: deadline)
    }

    /// The loop's task was cancelled: stop now, and give up on Redis at its first failure.
    mutating func cancelled(now: ContinuousClock.Instant) {
        abandoned = true
        stop(deadline: now)
    }

    mutating func outcomesArrived(_ results: [(UInt64, ExecutionOutcome)]) { arrived.append(contentsOf: results) }

    mutating func adopt(_ job: FetchedJob, decision: Decision) { adopted.append((job, decision)) }

    mutating func claimLost() { needsReconcile = true }

    /// Whether a job a watcher claimed may go to the executor now.
    var acceptsClaims: Bool { phase == .running && breaker.state == .closed && pausedUntil == nil }

    /// A watcher moved this job into the in-progress list with a token it held:
    /// the delivery to make at once, or none (malformed, or not accepting work:
    /// adopted instead, for the next turn to record).
    mutating func claimed(_ job: ParsedJob, now: ContinuousClock.Instant) -> Delivery? {
        guard acceptsClaims else {
            // Back to the head of its queue, untouched.
            adopt(job.job, decision: Decision(action: .requeue, event: .requeued, error: "picked up while not accepting work"))
            return nil
        }
        claimDelivered = true
        return register(job, now: now)
    }

    /// Marks the executing jobs among `jids` that were not asked yet; returns the cancels to send.
    mutating func cancelRequested(_ jids: Set<String>) -> [RunningJob] { running.markCancelRequested(jids) }

    // MARK: - Jobs in and out

    /// Jobs in flight at most now: the concurrency, raised to the executor's capacity and by
    /// tokens for jobs in transit while jobs are short (TransitTokens).
    var tokenLimit: Int { settings.concurrency + TransitTokens.inUse(transitTokensAllowed, recentJobSeconds: recentJobSeconds) }

    /// Tokens free now: the token limit less the jobs held (not yet recorded) and the tokens armed claims hold.
    func freeTokens(reserved: Int) -> Int { max(0, tokenLimit - (running.count - pending.count) - reserved) }

    /// Registers a fetched job as running and builds its request; nil for a malformed job (adopted for the dead set).
    mutating func register(_ parsed: ParsedJob, now: ContinuousClock.Instant) -> Delivery? {
        let job = parsed.job
        guard case let .success(payload) = parsed.payload else {
            guard case let .failure(problem) = parsed.payload else { return nil }
            var decision = policy.malformed(job, payload: problem.parsed, reason: problem.reason)
            decision.error =
                "malformed job: \(decision.error ?? problem.reason); payload: \(String(decoding: job.original.prefix(200), as: UTF8.self))"
            adopt(job, decision: decision)
            return nil
        }
        let retryCount = payload["retry_count"]?.intValue
        let jobClass = payload.displayClass
        let wallNow = policy.clock.now()
        let entry = RunningJob(
            job: job, payload: payload, jid: payload.jid ?? "", jobClass: jobClass,
            metricsClass: payload.metricsClass(displayClass: jobClass),
            attempt: retryCount.map { $0 + 2 } ?? 1, tenant: settings.tenant.tenant(of: payload),
            latency: payload.enqueuedAt.map { max(0, wallNow - $0) }, traceparent: payload.traceparent,
            startedAtWall: wallNow, startedAt: now, phase: .executing)
        let id = takeID()
        running.insert(id, entry)
        var request = ExecutionRequest(body: job.original, jid: entry.jid, queue: job.queue, attempt: entry.attempt)
        request.tenant = entry.tenant
        request.traceparent = entry.traceparent
        return Delivery(id: id, request: request, jobClass: jobClass, tenant: entry.tenant, latency: entry.latency)
    }

    mutating func takeID() -> UInt64 {
        defer { nextID &+= 1 }
        return nextID
    }

    /// What happens to a job whose delivery ended (the crash count guards against a job that keeps breaking the executor).
    mutating func decide(_ entry: RunningJob, outcome: ExecutionOutcome) -> Decision {
        guard let payload = entry.payload else {
            return policy.malformed(entry.job, payload: nil, reason: "job is not valid JSON")
        }
        if case let .executorUnavailable(reason, _, mayHaveRun) = outcome, mayHaveRun {
            let key = entry.jid.isEmpty ? String(entry.job.original.hashValue) : entry.jid
            if crashCounts.count > 10_000 { crashCounts.removeAll() }  // bounded memory; the counts are a safety net
            crashCounts[key, default: 0] += 1
            if crashCounts[key]! >= settings.maxCrashDeliveries {
                crashCounts[key] = nil
                let failure = JobFailure(
                    errorClass: "Courier::ExecutorCrashed",
                    errorMessage: "the executor connection broke during this job \(settings.maxCrashDeliveries) times in a row (\(reason))")
                return policy.jobFailed(entry.job, payload: payload, failure: failure)
            }
        } else if !entry.jid.isEmpty {
            crashCounts[entry.jid] = nil
        }
        return policy.decide(entry.job, payload: payload, outcome: outcome, cancelRequested: entry.cancelRequested)
    }
}

/// A fetched job parsed once, outside the dispatcher's lock.
struct ParsedJob: Sendable {
    struct Problem: Error {
        /// The payload when it is JSON at all (its fields go into the dead-set entry).
        let parsed: JobPayload?
        let reason: String
    }
    let job: FetchedJob
    let payload: Result<JobPayload, Problem>

    init(_ job: FetchedJob) {
        self.job = job
        do {
            let payload = try JobPayload(raw: job.original)
            do {
                try payload.validate()
                self.payload = .success(payload)
            } catch {
                self.payload = .failure(Problem(parsed: payload, reason: error.reason))
            }
        } catch {
            self.payload = .failure(Problem(parsed: nil, reason: error.reason))
        }
    }
}

extension MalformedJob {
    var reason: String { description }
}

extension Error {
    var reason: String { (self as? MalformedJob)?.description ?? "\(self)" }
}
