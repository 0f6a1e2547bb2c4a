import CourierSupport
import ExecutorProtocol
import Logging
import SidekiqModel
import Synchronization

// The dispatcher: takes a concurrency token, fetches a job into this
// process's in-progress list, hands it to the executor, and records the
// outcome. Every decision is DispatchCore's (a value without I/O, under one
// lock); this file is the loop that carries its turns out — round trips to
// the job source, waits, deliveries, logs, metrics, hooks and cancels.
// When it gives up on a running job (job timeout, shutdown deadline) or is
// asked to cancel one by jid, it tells the executor (protocol v1's cancel).

/// What the dispatcher is built with; Courier fills it from the configuration.
public struct DispatcherSettings: Sendable {
    /// Most jobs in flight (fetched and not yet acknowledged), before TransitTokens.
    public var concurrency: Int
    /// `concurrency` was set for courier itself (`-c`, COURIER_CONCURRENCY): no TransitTokens on top.
    public var concurrencyIsExplicit: Bool
    /// The queues, their order or weights, and per-queue caps (`QueuePlan`).
    public var plan: QueuePlan
    /// Deliveries whose connection broke mid-job before the job counts as failed.
    public var maxCrashDeliveries: Int
    /// When the executor breaker opens and for how long.
    public var breaker: CircuitBreakerSettings
    /// How jobs fetched together share requests (`--batch`; DeliveryPlan). Only jobs
    /// fetched together travel together, so an idle queue's job is never held back.
    public var batch: BatchSetting
    /// Where a job's tenant is read from (`--tenant-key`).
    public var tenant: TenantRule
    /// Cluster-wide limiters (the job source enforces them; the dispatcher arms no claim that would bypass them).
    public var limiters: Limiters
    /// Most jobs fetched ahead of a free token under a backlog of quick jobs (`--fetch-ahead`; 0: none).
    public var fetchAhead: Int

    /// `fetchAhead` nil: as many as `concurrency`.
    public init(
        concurrency: Int, plan: QueuePlan, maxCrashDeliveries: Int = 3, breaker: CircuitBreakerSettings = CircuitBreakerSettings(),
        batch: BatchSetting = .auto, tenant: TenantRule = .default, limiters: Limiters = Limiters(), fetchAhead: Int? = nil,
        concurrencyIsExplicit: Bool = true
    ) {
        self.concurrencyIsExplicit = concurrencyIsExplicit
        self.fetchAhead = max(0, fetchAhead ?? concurrency)
        self.tenant = tenant
        self.limiters = limiters
        self.concurrency = concurrency
        self.plan = plan
        self.batch = batch
        self.maxCrashDeliveries = maxCrashDeliveries
        self.breaker = breaker
    }
}

/// Where the dispatcher reads the time and sleeps (injected so tests can step it).
public protocol DispatchClock: Sendable {
    /// The current instant; every decision of the core takes it.
    var now: ContinuousClock.Instant { get }
    /// Returns at `deadline`: the loop's backoff after a failed round trip, which should hold even for a cancelled task.
    func sleep(until deadline: ContinuousClock.Instant) async
}

/// The monotonic system clock.
public struct SystemDispatchClock: DispatchClock {
    /// The system's continuous clock.
    public init() {}
    /// `ContinuousClock.now`.
    public var now: ContinuousClock.Instant { .now }
    /// Sleeps until `deadline`, cancelled or not.
    public func sleep(until deadline: ContinuousClock.Instant) async {
        // A cancelled task still waits its backoff, so a failing Redis is not retried in a spin.
        let task = Task.detached { try? await Task.sleep(until: deadline, clock: .continuous) }
        await task.value
    }
}

/// The dispatch loop: performs `DispatchCore`'s turns (round trips, waits, deliveries, logs, metrics, hooks, cancels).
/// One per process; `run` is awaited once, and the control methods may be called from any thread.
public final class Dispatcher: Sendable {
    /// Where the dispatcher is in its life; it only moves forward (running → quiet → stopping).
    public enum Phase: Sendable, Equatable {
        case running
        /// Fetch nothing more; finish what is in flight.
        case quiet
        /// Quiet, then at `deadline` push back whatever still runs, and return.
        case stopping(deadline: ContinuousClock.Instant)
    }

    private let core: Mutex<DispatchCore>
    private let batch: BatchSetting
    /// Queues with a per-queue limit (their watchers' tokens count against it).
    private let cappedQueues: [String]
    private let source: JobSource
    private let executor: JobExecutor
    private let logger: Logger
    private let metrics: any DispatchMetrics
    private let watchers: (any QueueWatching)?
    private let hooks: ExhaustedHooks
    private let cancels: JobCancels
    private let clock: any DispatchClock
    /// Sidekiq 7's per-class execution metrics, flushed by the heartbeat.
    private let executionMetrics: ExecutionMetrics?
    /// The thread the loop runs on (its Redis connection's too); nil: the cooperative pool.
    private let loop: ThreadExecutor?
    private let wake: WakeSignal

    /// Wires the ports together and installs the watchers' handlers; nothing runs until `run`.
    /// `executionMetrics` nil counts no Sidekiq 7 execution metrics. `loop`: a thread for the
    /// loop and its timed waits; give the source's Redis connection the same one, so a round
    /// trip changes no thread (nil: the loop runs on the cooperative pool).
    public init(
        settings: DispatcherSettings, source: JobSource, executor: JobExecutor, policy: OutcomePolicy,
        logger: Logger, metrics: any DispatchMetrics, watchers: (any QueueWatching)? = nil,
        executionMetrics: ExecutionMetrics? = nil, clock: any DispatchClock = SystemDispatchClock(), loop: ThreadExecutor? = nil
    ) {
        self.loop = loop
        self.wake = WakeSignal(timers: loop)
        self.core = Mutex(DispatchCore(settings: settings, policy: policy))
        self.batch = settings.batch
        self.cappedQueues = settings.plan.queues.filter { $0.limit != nil }.map(\.name)
        self.executionMetrics = executionMetrics
        self.source = source
        self.executor = executor
        self.logger = logger
        self.metrics = metrics
        self.watchers = watchers
        self.clock = clock
        self.hooks = ExhaustedHooks(executor: executor, logger: logger, metrics: metrics)
        self.cancels = JobCancels(executor: executor, logger: logger, metrics: metrics, batch: settings.batch)
        watchers?.setHandlers(
            WatchHandlers(
                onWork: { [wake] in wake.signal() },
                onClaim: { [weak self] job in self?.claimed(job) },
                onClaimLost: { [weak self] in
                    self?.core.withLock { $0.claimLost() }
                    self?.wake.signal()
                }))
    }

    // MARK: - Control (any thread)

    /// Stops fetching; in-flight jobs finish (SIGTSTP, the Web UI's Quiet). Logged once; later calls change nothing.
    public func quiet() {
        if core.withLock({ $0.quiet() }) { logger.notice("quiet: fetching stopped; in-flight jobs finish") }
        wake.signal()
    }

    /// Quiet, then at now + `timeout` push back whatever still runs and let `run` return (SIGTERM, the Web UI's Stop).
    /// A later call can only bring the deadline closer.
    public func stop(timeout: Duration) {
        let inFlight = core.withLock { core in
            core.stop(deadline: clock.now + timeout)
            return core.running.count
        }
        logger.notice("stopping: waiting up to \(timeout) for in-flight jobs", metadata: ["in_flight": "\(inFlight)"])
        wake.signal()
    }

    /// The phase now (read under the lock).
    public var currentPhase: Phase { core.withLock { $0.phase } }
    /// True once quiet or stopping: the heartbeat writes `quiet: true`, the scheduler stops polling and `/ready` fails.
    public var isQuiet: Bool { currentPhase != .running }
    /// The breaker's state now; `/ready` fails while it is open.
    public var breaker: CircuitBreaker.State { core.withLock { $0.breaker.state } }
    /// Jobs held now (fetched, not yet acknowledged, fetched ahead included), for the heartbeat's `courier` field.
    public var heldCount: Int { core.withLock { $0.running.count + $0.ahead.count } }
    /// Jobs in flight at most now: the concurrency and its TransitTokens (the heartbeat's `concurrency`).
    public var tokenLimit: Int { core.withLock { $0.tokenLimit } }
    /// Jobs executing now, for the heartbeat, less those whose payload Ruby's parser refuses:
    /// the Web UI's Busy page would fail on them, and Sidekiq never lists such a job. (The
    /// payloads are scanned outside the lock, once a beat.)
    public func busyJobs() -> [BusyJob] { core.withLock { $0.running.executing() }.filter { RubyJSONCheck.rubyReadable($0.payload) } }

    /// After each heartbeat: `cancelRequests` are the jids of `courier:cancel`'s last 5 minutes.
    /// Each job among them that runs here now and was not asked yet is marked and its
    /// cancel sent; when the executor answers `409 interrupted` (cancel) for it, it is
    /// acknowledged as failed, with neither retry nor dead set. Also asks the executor for
    /// its features again while they are not known.
    public func afterHeartbeat(cancelRequests: [String]) {
        if cancels.isUnknown { cancels.probe() }
        guard !cancelRequests.isEmpty else { return }
        for entry in core.withLock({ $0.cancelRequested(Set(cancelRequests)) }) {
            logger.notice("cancel requested for a running job", metadata: entry.logMetadata)
            cancels.send(jid: entry.jid, queue: entry.job.queue, attempt: entry.attempt, reason: .cancel)
        }
    }

    /// Takes over jobs already moved into this process's in-progress lists
    /// (poison pills from recovery) with a decision made for them.
    public func adopt(_ job: FetchedJob, decision: Decision) {
        core.withLock { $0.adopt(job, decision: decision) }
        wake.signal()
    }

    /// A watcher moved this job into the in-progress list with a token it
    /// held (on the watcher's thread): deliver it now, without the loop.
    /// The watcher wakes the loop afterwards, which re-arms it after its next fetch.
    private func claimed(_ job: FetchedJob) {
        let parsed = ParsedJob(job)  // outside the lock
        if let delivery = core.withLock({ $0.claimed(parsed, now: clock.now) }) {
            deliver([delivery])
        } else {
            wake.signal()  // adopted: the loop records it
        }
    }

    // MARK: - The loop

    /// Runs until stopped and every job is acknowledged or pushed back. A cancelled
    /// task counts as a stop with no time left: in-flight jobs go back to their queues
    /// (or, if Redis fails, stay in the in-progress list for recovery).
    public func run() async {
        if let loop {
            await withTaskExecutorPreference(loop) { await runLoop() }
        } else {
            await runLoop()
        }
    }

    private func runLoop() async {
        cancels.probe()
        var step = DispatchStep.proceed
        var sawCancel = false
        loop: while true {
            if Task.isCancelled && !sawCancel {
                sawCancel = true
                core.withLock { $0.cancelled(now: clock.now) }
                logger.notice("dispatcher cancelled: pushing back in-flight jobs")
            }
            switch step {
            case .proceed:
                step = turn { core, now, view in core.next(now: now, watchers: view) }
            case .quiesceWatchers:
                await watchers?.quiesce()
                step = .proceed
            case let .reconcile(held):
                do {
                    let returned = try await source.reconcile(running: held)
                    step = turn { core, _, _ in core.reconciled(returned: returned) }
                } catch {
                    step = turn { core, now, _ in core.roundTripFailed(error, now: now) }
                }
            case let .exchange(request):
                do {
                    let reply = try await source.exchange(request)
                    let jobs = reply.jobs.map(ParsedJob.init)  // parsed outside the lock
                    metrics.limiterDeferred(reply.deferred)
                    step = turn { core, now, view in
                        core.exchanged(jobs, emptyQueues: reply.emptyQueues, now: now, watchers: view, limited: reply.limited)
                    }
                } catch {
                    step = turn { core, now, _ in core.roundTripFailed(error, now: now) }
                }
            case let .wait(until):
                if let until {
                    let left = until - clock.now
                    if left > .zero { await wake.wait(timeout: left) }
                } else {
                    await wake.wait()
                }
                step = .proceed
            case let .backoff(until):
                await clock.sleep(until: until)
                step = .proceed
            case .finish:
                break loop
            }
        }
        // Cancels still out get about a second from the deadline (or from now), not more.
        let cancelsSent = core.withLock { $0.shutdownCancelsSent }
        await cancels.drain(until: (cancelsSent ?? clock.now) + JobCancels.requestTimeout)
        await hooks.stop()
        if hooks.outstanding > 0 {
            logger.error(
                "exhausted hooks still waiting for the executor are dropped at exit", metadata: ["count": .string(String(hooks.outstanding))])
        }
        logger.notice("dispatcher stopped")
    }

    /// One turn of the core under its lock; its actions are performed after the lock is released.
    private func turn(_ body: (inout DispatchCore, ContinuousClock.Instant, WatcherView?) -> Turn) -> DispatchStep {
        // Read before the lock: a claim adds to `running` before it gives its token back.
        let view = watchers.map { w in
            WatcherView(
                reservedTokens: w.reservedTokens, isDisarmed: w.isDisarmed,
                holdingQueues: cappedQueues.isEmpty ? [] : Set(cappedQueues.filter { w.holdsToken($0) }))
        }
        let target = cancels.jobsPerRequest.load(ordering: .relaxed)
        let health = cancels.health
        let result = core.withLock { core in
            core.coalesceTarget = target
            core.transitTokensAllowed = TransitTokens.allowed(
                base: core.settings.concurrency, explicit: core.settings.concurrencyIsExplicit, health: health)
            return body(&core, clock.now, view)
        }
        for action in result.actions { perform(action) }
        return result.step
    }

    // MARK: - Actions

    private func perform(_ action: DispatchAction) {
        switch action {
        case let .deliver(deliveries):
            deliver(deliveries)
        case let .report(report):
            self.report(report)
        case let .cancel(entry, reason):
            cancels.send(jid: entry.jid, queue: entry.job.queue, attempt: entry.attempt, reason: reason)
        case let .breakerChanged(t):
            transitioned(t)
        case let .arm(queue, mode):
            watchers?.arm(queue, mode)
        case .disarmClaims:
            watchers?.disarm(claimsOnly: true)
        case let .log(level, message, metadata):
            logger.log(level: level, "\(message)", metadata: metadata)
        case let .roundTripDone(inFlight):
            metrics.roundTrip()
            metrics.setInFlight(inFlight)
        case let .roundTripFailed(kind):
            metrics.redisError(kind)
        }
    }

    /// Hands jobs to the executor: one request each, streams (each outcome as it
    /// arrives), or batches of jobs fetched together, as DeliveryPlan splits them.
    private func deliver(_ deliveries: [Delivery]) {
        if logger.logLevel <= .info {  // built per job only when the line is written
            for d in deliveries {
                var metadata: Logger.Metadata = [
                    "jid": .string(d.request.jid), "class": .string(d.jobClass), "queue": .string(d.request.queue),
                    "attempt": .string(String(d.request.attempt)), "event": "start",
                ]
                if let tenant = d.tenant { metadata["tenant"] = .string(tenant) }
                if let latency = d.latency { metadata["latency_ms"] = .string(String(Int(latency * 1000))) }
                if let traceparent = d.request.traceparent { metadata["trace_id"] = .string(String(TraceParent.traceID(traceparent))) }
                logger.info("start", metadata: metadata)
            }
        }
        if deliveries.count == 1 || cancels.jobsPerRequest.load(ordering: .relaxed) == 1 {
            // One job per request (the light-load and plain-executor case): no plan to make.
            for d in deliveries {
                let id = d.id
                executor.submit(d.request) { [self] outcome in finished([(id, outcome)]) }
            }
            return
        }
        for (route, range) in DeliveryPlan.groups(count: deliveries.count, setting: batch, health: cancels.health) {
            let chunk = deliveries[range]
            let ids = chunk.map(\.id)
            switch route {
            case .single:
                executor.submit(chunk.first!.request) { [self] outcome in finished([(ids[0], outcome)]) }
            case .stream:
                executor.submitStream(chunk.map(\.request)) { [self] results in finished(results.map { (ids[$0.0], $0.1) }) }
            case .batch:
                executor.submitBatch(chunk.map(\.request)) { [self] results in finished(Array(zip(ids, results))) }
            }
        }
    }

    /// Called on the executor's thread when deliveries end.
    private func finished(_ results: [(UInt64, ExecutionOutcome)]) {
        core.withLock { $0.outcomesArrived(results) }
        wake.signal()
    }

    /// Logs, counts and runs the exhausted hooks for one decision.
    private func report(_ report: JobReport) {
        let (entry, outcome, decision, seconds) = (report.entry, report.outcome, report.decision, report.seconds)
        metrics.jobFinished(
            queue: entry.job.queue, jobClass: entry.jobClass, outcome: decision.event.rawValue, tenant: entry.tenant,
            seconds: outcome == nil ? nil : seconds, latency: outcome == nil ? nil : entry.latency)
        if case let .executorUnavailable(reason, _, _) = outcome {
            metrics.executorError(reason.hasPrefix("executor answered") ? "http" : "unavailable")
        }
        if case .timedOut = outcome { metrics.executorError("timeout") }
        if let executionMetrics, let outcome { countExecution(entry, outcome: outcome, decision: decision, seconds: seconds, into: executionMetrics) }
        let level: Logger.Level =
            switch decision.event {
            case .done: .info
            case .retry, .requeued, .cancelled: .warning
            case .dead, .discarded, .failed: .error
            }
        if logger.logLevel <= level {  // the metadata is built per job only when the line is written
            var metadata = entry.logMetadata
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
    private func countExecution(
        _ entry: RunningJob, outcome: ExecutionOutcome, decision: Decision, seconds: Double,
        into executionMetrics: ExecutionMetrics
    ) {
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
        metrics.breaker(t.to.rawValue)
        if t.to == .closed { cancels.probe() }  // the executor may be another one now
        let metadata: Logger.Metadata = ["from": "\(t.from.rawValue)", "to": "\(t.to.rawValue)", "reason": "\(t.reason)"]
        if t.to == .open {
            logger.error("circuit breaker opened", metadata: metadata)
        } else {
            logger.notice("circuit breaker \(t.to.rawValue)", metadata: metadata)
        }
    }
}
