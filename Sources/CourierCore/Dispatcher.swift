import ExecutorClient
import Logging
import SidekiqModel
import Synchronization

// The dispatcher: takes a concurrency token, fetches a job into this
// process's in-progress list, hands it to the executor, and records the
// outcome. One async loop owns the decisions; Redis round trips batch every
// outcome that finished since the last trip with the next fetch, so a busy
// courier costs about one Redis call per batch of jobs, not several per job.
// When it gives up on a running job (job timeout, shutdown deadline) or is
// asked to cancel one by jid, it tells the executor (protocol v1's cancel).

public struct DispatcherSettings: Sendable {
    /// Most jobs in flight (fetched and not yet acknowledged).
    public var concurrency: Int
    public var plan: QueuePlan
    /// Deliveries whose connection broke mid-job before the job counts as failed.
    public var maxCrashDeliveries: Int
    public var breaker: CircuitBreakerSettings
    /// Most jobs sent in one `/v1/jobs/batch` request (1: one job per request).
    /// Only jobs fetched together are batched, so an idle queue's job is never held back.
    public var batchSize: Int

    public init(concurrency: Int, plan: QueuePlan, maxCrashDeliveries: Int = 3, breaker: CircuitBreakerSettings = CircuitBreakerSettings(),
                batchSize: Int = 1) {
        self.concurrency = concurrency
        self.plan = plan
        self.batchSize = max(1, batchSize)
        self.maxCrashDeliveries = maxCrashDeliveries
        self.breaker = breaker
    }
}

public final class Dispatcher: Sendable {
    public enum Phase: Sendable, Equatable {
        case running
        /// Fetch nothing more; finish what is in flight.
        case quiet
        /// Quiet, then at `deadline` push back whatever still runs, and return.
        case stopping(deadline: ContinuousClock.Instant)
    }

    private let settings: DispatcherSettings
    private let source: JobSource
    private let executor: JobExecutor
    private let policy: OutcomePolicy
    private let logger: Logger
    private let metrics: CourierMetrics
    private let watchers: QueueWatchers?
    private let hooks: ExhaustedHooks
    private let cancels: JobCancels
    /// Sidekiq 7's per-class execution metrics, flushed by the heartbeat.
    private let executionMetrics: ExecutionMetrics?

    private let wake = WakeSignal()
    private let outcomes = Mutex<[(UInt64, ExecutionOutcome)]>([])
    private let adopted = Mutex<[(FetchedJob, Decision)]>([])
    private let running = RunningJobs()
    private let phase = Mutex<Phase>(.running)
    private let nextID = Atomic<UInt64>(1)
    private let breakerState = Mutex<CircuitBreaker.State>(.closed)
    /// A watcher's claim lost its reply: reconcile before the next fetch.
    private let claimLost = Atomic<Bool>(false)
    /// A claim delivered a job since the loop last looked (its queue may have more).
    private let claimDelivered = Atomic<Bool>(false)
    /// The executor asked to wait (Retry-After): claims must not deliver either.
    private let fetchPaused = Atomic<Bool>(false)
    private var hasQueueLimits: Bool { settings.plan.queues.contains { $0.limit != nil } }

    public init(settings: DispatcherSettings, source: JobSource, executor: JobExecutor, policy: OutcomePolicy,
                logger: Logger, metrics: CourierMetrics, watchers: QueueWatchers? = nil, executionMetrics: ExecutionMetrics? = nil) {
        self.settings = settings
        self.executionMetrics = executionMetrics
        self.source = source
        self.executor = executor
        self.policy = policy
        self.logger = logger
        self.metrics = metrics
        self.watchers = watchers
        self.hooks = ExhaustedHooks(executor: executor, logger: logger, metrics: metrics)
        self.cancels = JobCancels(executor: executor, logger: logger, metrics: metrics)
        watchers?.setHandlers(.init(
            onWork: { [wake] in wake.signal() },
            onClaim: { [weak self] job in self?.claimed(job) },
            onClaimLost: { [weak self] in
                self?.claimLost.store(true, ordering: .relaxed)
                self?.wake.signal()
            }))
    }

    // MARK: - Control (any thread)

    public func quiet() {
        let changed = phase.withLock { p -> Bool in
            guard p == .running else { return false }
            p = .quiet
            return true
        }
        if changed { logger.notice("quiet: fetching stopped; in-flight jobs finish") }
        wake.signal()
    }

    public func stop(timeout: Duration) {
        let deadline = ContinuousClock.now + timeout
        phase.withLock { p in
            if case let .stopping(existing) = p, existing <= deadline { return }
            p = .stopping(deadline: deadline)
        }
        logger.notice("stopping: waiting up to \(timeout) for in-flight jobs", metadata: ["in_flight": "\(running.count)"])
        wake.signal()
    }

    public var currentPhase: Phase { phase.withLock { $0 } }
    public var isQuiet: Bool { currentPhase != .running }
    public var breaker: CircuitBreaker.State { breakerState.withLock { $0 } }
    /// Jobs executing now, for the heartbeat.
    public func busyJobs() -> [BusyJob] { running.executing() }

    /// After each heartbeat: `cancelRequests` are the jids of `courier:cancel`'s last 5 minutes.
    /// Each job among them that runs here now and was not asked yet is marked and its
    /// cancel sent; when the executor answers `409 interrupted` (cancel) for it, it is
    /// acknowledged as failed, with neither retry nor dead set. Also asks the executor for
    /// its features again while they are not known.
    public func afterHeartbeat(cancelRequests: [String]) {
        if cancels.isUnknown { cancels.probe() }
        guard !cancelRequests.isEmpty else { return }
        for entry in running.markCancelRequested(Set(cancelRequests)) {
            logger.notice("cancel requested for a running job", metadata: jobMetadata(entry))
            cancels.send(jid: entry.jid, queue: entry.job.queue, attempt: entry.attempt, reason: .cancel)
        }
    }

    /// Takes over jobs already moved into this process's in-progress lists
    /// (poison pills from recovery) with a decision made for them.
    func adopt(_ job: FetchedJob, decision: Decision) {
        adopted.withLock { $0.append((job, decision)) }
        wake.signal()
    }

    /// A watcher moved this job into the in-progress list with a token it
    /// held (on the watcher's thread): deliver it now, without the loop.
    /// The watcher wakes the loop afterwards, which re-arms it after its next fetch.
    private func claimed(_ job: FetchedJob) {
        let deliverable = phase.withLock { $0 == .running } && breakerState.withLock { $0 == .closed }
            && !fetchPaused.load(ordering: .relaxed)
        if !deliverable {
            // Quiet, stopping, the breaker tripped or the executor asked to wait meanwhile:
            // back to the head of its queue, untouched.
            adopt(job, decision: Decision(action: .requeue, event: .requeued, error: "picked up while not accepting work"))
            return
        }
        if let prepared = prepare(job) { deliver([prepared]) }
        claimDelivered.store(true, ordering: .relaxed)
    }

    // MARK: - The loop

    /// Runs until stopped and every job is acknowledged or pushed back.
    public func run() async {
        var breaker = CircuitBreaker(settings: settings.breaker)
        var pending: [(UInt64, Completion)] = []
        var crashCounts: [String: Int] = [:]
        var needsReconcile = false
        var redisFailures = 0
        var pausedUntil: ContinuousClock.Instant?  // an executor's Retry-After
        var shutdownCancelsSent: ContinuousClock.Instant?
        cancels.probe()

        while true {
            // 1. Decide what happens to every job that finished.
            let finished = outcomes.withLock { o in defer { o.removeAll(keepingCapacity: true) }; return o }
            for (id, outcome) in finished {
                guard let entry = running.get(id), entry.phase == .executing else { continue }
                running.setPhase(id, .finished)
                let decision = decide(entry, outcome: outcome, crashCounts: &crashCounts)
                if let t = breaker.record(id, executorFailure: outcome.isExecutorFailure, now: .now) { transitioned(t) }
                if case let .executorUnavailable(_, retryAfter?, _) = outcome {
                    let until = ContinuousClock.now + retryAfter
                    if pausedUntil.map({ $0 < until }) ?? true {
                        pausedUntil = until
                        fetchPaused.store(true, ordering: .relaxed)
                        logger.warning("executor asked to wait (Retry-After); fetching paused", metadata: ["seconds": "\(retryAfter.components.seconds)"])
                    }
                }
                report(entry, outcome: outcome, decision: decision)
                pending.append((id, Completion(job: entry.job, action: decision.action)))
                // Given up on (a failed attempt now): stop it in the executor before its retry runs.
                if case .timedOut = outcome { cancels.send(jid: entry.jid, queue: entry.job.queue, attempt: entry.attempt, reason: .timeout) }
            }
            // Jobs that never reach the executor (malformed, poison pills) with a decision made for them.
            for (job, decision) in adopted.withLock({ a in defer { a.removeAll() }; return a }) {
                let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
                let payload = try? JobPayload(raw: job.original)
                let jobClass = payload?.displayClass ?? "unknown"
                let entry = RunningJob(job: job, payload: payload, jid: payload?.jid ?? "", jobClass: jobClass,
                                       metricsClass: payload?.metricsClass(displayClass: jobClass) ?? jobClass, attempt: 0,
                                       tenant: payload?.tenant, startedAtWall: policy.clock.now(), startedAt: .now, phase: .finished)
                running.insert(id, entry)
                report(entry, outcome: nil, decision: decision)
                pending.append((id, Completion(job: job, action: decision.action)))
            }

            if claimLost.exchange(false, ordering: .relaxed) { needsReconcile = true }

            // 2. Shutdown: at the deadline, push back what still runs.
            let now = ContinuousClock.now
            let currentPhase = phase.withLock { $0 }
            if case let .stopping(deadline) = currentPhase, now >= deadline {
                for id in running.executingIDs() {
                    guard let entry = running.get(id) else { continue }
                    running.setPhase(id, .abandoned)
                    logger.warning("shutdown timeout: job pushed back to its queue", metadata: jobMetadata(entry))
                    // The cancel goes out first; the push-back below does not wait for its answer.
                    cancels.send(jid: entry.jid, queue: entry.job.queue, attempt: entry.attempt, reason: .shutdown)
                    if shutdownCancelsSent == nil { shutdownCancelsSent = now }
                    pending.append((id, Completion(job: entry.job, action: .requeueAtShutdown)))
                }
            }
            if let watchers {
                // Not accepting work: take the watchers out of Redis. What they claimed
                // meanwhile comes back through `adopted` on the next turn.
                if currentPhase != .running, !watchers.isDisarmed {
                    await watchers.quiesce()
                    continue
                }
                if breaker.state != .closed || pausedUntil != nil, watchers.reservedTokens > 0 {
                    watchers.disarm(claimsOnly: true)
                }
            }

            // 3. How many jobs may be fetched now.
            var maxJobs = 0
            var allowances: [String: Int] = [:]
            if currentPhase == .running && !needsReconcile {
                let (breakerAllowance, t) = breaker.allowance(now: now)
                if let t { transitioned(t) }
                // Reservations first: a claim adds to `running` before it gives its token back,
                // so this order never sees a job neither as running nor as reserved.
                let reserved = watchers?.reservedTokens ?? 0
                maxJobs = max(0, settings.concurrency - running.count - reserved)
                if let b = breakerAllowance { maxJobs = min(maxJobs, b) }
                if let until = pausedUntil {
                    if now < until {
                        maxJobs = 0
                    } else {
                        pausedUntil = nil
                        fetchPaused.store(false, ordering: .relaxed)
                    }
                }
                // A claim found work but every spare token waits in another queue's claim:
                // take them back, so the next fetch can see whether a backlog is there.
                if claimDelivered.exchange(false, ordering: .relaxed), maxJobs == 0, reserved > 0,
                   settings.concurrency - running.count > 0, let watchers {
                    watchers.disarm(claimsOnly: true)
                }
                let held = hasQueueLimits ? Set(settings.plan.queues.filter { watchers?.holdsToken($0.name) == true }.map(\.name)) : []
                let perQueue = hasQueueLimits ? running.countByQueue() : [:]
                for spec in settings.plan.queues {
                    if let limit = spec.limit {
                        allowances[spec.name] = max(0, limit - perQueue[spec.name, default: 0] - (held.contains(spec.name) ? 1 : 0))
                    }
                }
            }

            if pending.isEmpty && maxJobs == 0 && !needsReconcile {
                if case let .stopping(deadline) = currentPhase {
                    if running.count == 0 && adopted.withLock({ $0.isEmpty }) && !claimLost.load(ordering: .relaxed)
                        && watchers?.isDisarmed != false {
                        break
                    }
                    await wake.wait(timeout: max(.milliseconds(1), deadline - .now))
                } else if let reopen = breaker.openUntil ?? pausedUntil, currentPhase == .running {
                    await wake.wait(timeout: max(.milliseconds(1), reopen - .now))
                } else {
                    await wake.wait()
                }
                continue
            }

            // 4. One round trip: acknowledge, then fetch.
            do {
                if needsReconcile {
                    // A watcher still inside Redis could claim a job the reconcile would not know of.
                    if let watchers, !watchers.isDisarmed {
                        await watchers.quiesce()
                        continue
                    }
                    // Adopted jobs are ours too: their decisions apply with the next exchange.
                    let held = running.allJobs() + adopted.withLock { $0.map(\.0) }
                    let returned = try await source.reconcile(running: held)
                    if returned > 0 { logger.notice("pushed back jobs whose fetch reply was lost", metadata: ["count": "\(returned)"]) }
                    needsReconcile = false
                }
                let reply = try await source.exchange(ExchangeRequest(completions: pending.map(\.1), maxJobs: maxJobs, allowances: allowances))
                metrics.roundTrip()
                if redisFailures > 0 {
                    logger.notice("redis round trips work again", metadata: ["failed_attempts": "\(redisFailures)"])
                    redisFailures = 0
                }
                for (id, _) in pending { running.remove(id) }
                pending.removeAll(keepingCapacity: true)
                let prepared = reply.jobs.compactMap { prepare($0) }
                for (id, _) in prepared { breaker.startedJob(id) }
                deliver(prepared)
                metrics.setInFlight(running.count)
                // Without watchers (a bare dispatcher), empty queues are polled once a second.
                if maxJobs > 0 && reply.jobs.isEmpty && watchers == nil { await wake.wait(timeout: .seconds(1)) }
                if let watchers, maxJobs > 0 {
                    if reply.jobs.count < maxJobs {
                        // Idle tokens wait in Redis as claims; without one to spare, a look wakes us.
                        let claimable = breaker.state == .closed && pausedUntil == nil
                        var spare = claimable ? maxJobs - reply.jobs.count : 0
                        for queue in reply.emptyQueues {
                            let capLeft = allowances[queue].map { cap in cap - reply.jobs.lazy.filter { $0.queue == queue }.count } ?? 1
                            if spare > 0 && capLeft > 0 {
                                watchers.arm(queue, .claim)
                                spare -= 1
                            } else {
                                watchers.arm(queue, .look)
                            }
                        }
                        if reply.jobs.isEmpty { await wake.wait() }
                    } else if watchers.reservedTokens > 0 {
                        // A backlog: tokens held for empty queues are better spent on it.
                        watchers.disarm(claimsOnly: true)
                    }
                }
            } catch {
                redisFailures += 1
                metrics.redisError()
                if redisFailures == 1 || redisFailures % 50 == 0 {
                    logger.error("redis round trip failed; outcomes kept and retried", metadata: [
                        "error": "\(error)", "pending": "\(pending.count)", "attempt": "\(redisFailures)",
                    ])
                }
                // The script may have run before the reply was lost: afterwards,
                // put back any fetched job we never heard of. Replayed outcomes
                // are harmless (each applies only if its job is still ours).
                needsReconcile = true
                if case let .stopping(deadline) = phase.withLock({ $0 }), ContinuousClock.now > deadline + .seconds(10) {
                    // Nothing is lost: what is left stays in this process's in-progress
                    // lists, and a survivor pushes it back once this heartbeat expires.
                    logger.error("giving up on Redis at shutdown; unacknowledged jobs stay in the in-progress list for recovery",
                                 metadata: ["jobs": "\(running.count)"])
                    break
                }
                try? await Task.sleep(for: .milliseconds(min(1_000, 25 << min(redisFailures, 6))))
            }
        }
        // Cancels still out get about a second from the deadline (or from now), not more.
        await cancels.drain(until: (shutdownCancelsSent ?? .now) + JobCancels.requestTimeout)
        hooks.stop()
        if hooks.outstanding > 0 {
            logger.error("exhausted hooks still waiting for the executor are dropped at exit", metadata: ["count": .string(String(hooks.outstanding))])
        }
        logger.notice("dispatcher stopped")
    }

    /// Registers a fetched job as running and builds its request; nil for a malformed job (dead-lettered instead).
    private func prepare(_ job: FetchedJob) -> (UInt64, ExecutionRequest)? {
        let payload: JobPayload
        do {
            payload = try JobPayload(raw: job.original)
            try payload.validate()
        } catch {
            let parsed = try? JobPayload(raw: job.original)
            var decision = policy.malformed(job, payload: parsed, reason: error.reason)
            decision.error = "malformed job: \(decision.error ?? error.reason); payload: \(String(decoding: job.original.prefix(200), as: UTF8.self))"
            adopt(job, decision: decision)  // reported and recorded with the next round trip
            return nil
        }
        let retryCount = payload["retry_count"]?.intValue
        let jobClass = payload.displayClass
        let entry = RunningJob(job: job, payload: payload, jid: payload.jid ?? "", jobClass: jobClass,
                               metricsClass: payload.metricsClass(displayClass: jobClass),
                               attempt: retryCount.map { $0 + 2 } ?? 1, tenant: payload.tenant,
                               startedAtWall: policy.clock.now(), startedAt: .now, phase: .executing)
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        running.insert(id, entry)
        logger.debug("start", metadata: jobMetadata(entry))
        return (id, ExecutionRequest(body: job.original, jid: entry.jid, queue: job.queue, attempt: entry.attempt))
    }

    /// Hands jobs to the executor: one request each, or batches of jobs fetched together.
    private func deliver(_ prepared: [(UInt64, ExecutionRequest)]) {
        var index = 0
        while index < prepared.count {
            let chunk = prepared[index..<min(index + settings.batchSize, prepared.count)]
            index += chunk.count
            let ids = chunk.map(\.0)
            if chunk.count == 1 {
                executor.submit(chunk.first!.1) { [self] outcome in finished([(ids[0], outcome)]) }
            } else {
                executor.submitBatch(chunk.map(\.1)) { [self] results in finished(Array(zip(ids, results))) }
            }
        }
    }

    /// Called on the executor's thread when deliveries end.
    private func finished(_ results: [(UInt64, ExecutionOutcome)]) {
        outcomes.withLock { $0.append(contentsOf: results) }
        wake.signal()
    }

    private func decide(_ entry: RunningJob, outcome: ExecutionOutcome, crashCounts: inout [String: Int]) -> Decision {
        guard let payload = entry.payload else {
            return policy.malformed(entry.job, payload: nil, reason: "job is not valid JSON")
        }
        if case let .executorUnavailable(reason, _, mayHaveRun) = outcome, mayHaveRun {
            // A job that keeps breaking the executor's connection must not loop forever.
            let key = entry.jid.isEmpty ? String(entry.job.original.hashValue) : entry.jid
            if crashCounts.count > 10_000 { crashCounts.removeAll() }  // bounded memory; the counts are a safety net
            crashCounts[key, default: 0] += 1
            if crashCounts[key]! >= settings.maxCrashDeliveries {
                crashCounts[key] = nil
                let failure = JobFailure(errorClass: "Courier::ExecutorCrashed",
                                         errorMessage: "the executor connection broke during this job \(settings.maxCrashDeliveries) times in a row (\(reason))")
                return policy.jobFailed(entry.job, payload: payload, failure: failure)
            }
        } else if !entry.jid.isEmpty {
            crashCounts[entry.jid] = nil
        }
        return policy.decide(entry.job, payload: payload, outcome: outcome, cancelRequested: entry.cancelRequested)
    }

    /// Logs, counts and runs the exhausted hooks for one decision (`outcome` nil: the job never ran).
    private func report(_ entry: RunningJob, outcome: ExecutionOutcome?, decision: Decision) {
        let elapsed = (ContinuousClock.now - entry.startedAt).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        metrics.jobFinished(queue: entry.job.queue, jobClass: entry.jobClass, outcome: decision.event.rawValue,
                            seconds: outcome == nil ? nil : seconds)
        if case let .executorUnavailable(reason, _, _) = outcome { metrics.executorError(reason.hasPrefix("executor answered") ? "http" : "unavailable") }
        if case .timedOut = outcome { metrics.executorError("timeout") }
        if let executionMetrics, let outcome { countExecution(entry, outcome: outcome, decision: decision, seconds: seconds, into: executionMetrics) }
        let level: Logger.Level = switch decision.event {
        case .done: .info
        case .retry, .requeued, .cancelled: .warning
        case .dead, .discarded, .failed: .error
        }
        if logger.logLevel <= level {  // the metadata is built per job only when the line is written
            var metadata = jobMetadata(entry)
            metadata["duration_ms"] = .string(String(Int(seconds * 1000)))
            metadata["event"] = .string(decision.event.rawValue)
            if let error = decision.error { metadata["error"] = .string(error) }
            logger.log(level: level, "\(decision.event.rawValue)", metadata: metadata)
        }
        if let exhausted = decision.notifyExhausted {
            let path = decision.deathHandlersOnly ? "/v1/jobs/exhausted?only=death_handlers" : "/v1/jobs/exhausted"
            hooks.call(ExecutionRequest(path: path, body: exhausted, jid: entry.jid, queue: entry.job.queue, attempt: entry.attempt))
        }
    }

    /// Sidekiq 7's metrics count only jobs that ran: a success (with its time), a
    /// failure or a timeout. A job refused, never delivered, or pushed back did not run, or ran for a time nobody knows.
    private func countExecution(_ entry: RunningJob, outcome: ExecutionOutcome, decision: Decision, seconds: Double,
                                into executionMetrics: ExecutionMetrics) {
        switch outcome {
        case .succeeded:
            executionMetrics.succeeded(jobClass: entry.metricsClass, milliseconds: Int(seconds * 1000))
        case .failed, .timedOut:
            executionMetrics.failed(jobClass: entry.metricsClass)
        case .interrupted:
            // Raised in the job (Courier::JobCancelled, …) unless it goes back to its queue.
            if decision.event != .requeued { executionMetrics.failed(jobClass: entry.metricsClass) }
        case .refused, .executorUnavailable:
            break
        }
    }

    private func transitioned(_ t: CircuitBreaker.Transition) {
        breakerState.withLock { $0 = t.to }
        metrics.breaker(t.to.rawValue)
        if t.to == .closed { cancels.probe() }  // the executor may be another one now
        let metadata: Logger.Metadata = ["from": "\(t.from.rawValue)", "to": "\(t.to.rawValue)", "reason": "\(t.reason)"]
        if t.to == .open { logger.error("circuit breaker opened", metadata: metadata) } else { logger.notice("circuit breaker \(t.to.rawValue)", metadata: metadata) }
    }

    private func jobMetadata(_ entry: RunningJob) -> Logger.Metadata {
        var m: Logger.Metadata = ["jid": .string(entry.jid), "class": .string(entry.jobClass), "queue": .string(entry.job.queue),
                                  "attempt": .string(String(entry.attempt))]
        if let tenant = entry.tenant { m["tenant"] = .string(tenant) }
        return m
    }
}

extension MalformedJob {
    var reason: String { description }
}

extension Error {
    var reason: String { (self as? MalformedJob)?.description ?? "\(self)" }
}
