import Config
import CourierSupport
import ExecutorClient
import ExecutorProtocol
import JobDispatch
import Logging
import Ops
import RedisAdapters
import RedisClient
import SidekiqModel
import Synchronization

// Composition: builds every part from one configuration and runs them
// together until stopped. The executable and the tests both use this.

public final class Courier: Sendable {
    public let configuration: CourierConfiguration
    public let identity: ProcessIdentity
    public let metrics: CourierMetrics
    /// Sidekiq 7's execution metrics (the Web UI's Metrics tab), counted by the dispatcher and written by the heartbeat.
    private let executionMetrics = ExecutionMetrics()
    private let logger: Logger
    private let keys: SidekiqKeys
    private let dispatcher: Dispatcher
    private let heartbeat: Heartbeat
    private let scheduler: Scheduler
    /// Nil without periodic jobs (no extra Redis connection then).
    private let periodic: PeriodicLeader?
    /// Nil without limiters: after each heartbeat, renews this process's leases and publishes the declarations.
    private let leases: LimiterLeases?
    private let watchers: QueueWatchers
    private let housekeeping: RedisWorker
    private let recovery: ProcessRecovery
    private let executor: HTTPExecutor
    private let ops: OpsServer?
    private let processCount = Atomic<Int>(1)
    private let redisHealthy = HealthFlag()

    public init(configuration: CourierConfiguration, logger: Logger, identity: ProcessIdentity = ProcessIdentity()) throws {
        self.configuration = configuration
        self.identity = identity
        self.logger = logger
        metrics = CourierMetrics(labels: configuration.metricsLabels)
        metrics.setConcurrencyLimit(configuration.concurrency)
        let keys = SidekiqKeys(namespace: configuration.namespace)
        self.keys = keys
        let (endpoint, timeouts) = (configuration.redis, configuration.redisTimeouts)
        func worker(_ name: String) -> RedisWorker { RedisWorker(name: name, endpoint: endpoint, timeouts: timeouts, logger: logger) }
        housekeeping = worker("housekeeping")
        recovery = ProcessRecovery(worker: housekeeping, keys: keys, identity: identity.description, maxRecoveries: configuration.maxRecoveries)
        watchers = QueueWatchers(
            queues: configuration.plan.names, keys: keys, identity: identity.description, control: housekeeping,
            makeWorker: worker)
        var executorConfiguration = configuration.executor
        // One connection per token at most (and a few for cancels and hooks), the transit tokens included.
        let tokens = configuration.concurrency + (configuration.concurrencyIsExplicit ? 0 : TransitTokens.maxExtra)
        executorConfiguration.maxConnections = max(executorConfiguration.maxConnections, tokens + 4)
        let executor = HTTPExecutor(configuration: executorConfiguration)
        self.executor = executor
        // The dispatcher loop and its Redis connection share one thread: a round trip hops none.
        let loop = ThreadExecutor(name: "courier-dispatch")
        let fetch = RedisWorker(name: "fetch", endpoint: endpoint, timeouts: timeouts, logger: logger, executor: loop)
        let source = RedisJobSource(
            worker: fetch, keys: keys, identity: identity.description, plan: configuration.plan, limiters: configuration.limiters)
        leases = LimiterLeases(worker: housekeeping, keys: keys, identity: identity.description, limiters: configuration.limiters)
        dispatcher = Dispatcher(
            settings: DispatcherSettings(
                concurrency: configuration.concurrency, plan: configuration.plan, breaker: configuration.breaker,
                batch: configuration.batch, tenant: configuration.tenant, limiters: configuration.limiters,
                fetchAhead: configuration.fetchAhead, concurrencyIsExplicit: configuration.concurrencyIsExplicit),
            source: source, executor: executor, policy: OutcomePolicy(maxRetries: configuration.maxRetries),
            logger: logger, metrics: metrics, watchers: watchers, executionMetrics: executionMetrics, loop: loop)
        heartbeat = Heartbeat(
            worker: housekeeping, keys: keys, identity: identity,
            configuration: ProcessDescription(
                concurrency: configuration.concurrency, plan: configuration.plan,
                processTTL: configuration.processTTL, tag: configuration.tag,
                labels: configuration.labels, executor: configuration.executor.baseURL),
            startedAt: WallClock.system.now(), executionMetrics: executionMetrics)
        scheduler = Scheduler(worker: worker("scheduler"), keys: keys, logger: logger)
        periodic =
            configuration.periodic.isEmpty
            ? nil : PeriodicLeader(worker: worker("periodic"), keys: keys, identity: identity.description, lease: configuration.periodicLease)
        if let port = configuration.opsPort {
            let (dispatcher, healthy) = (dispatcher, redisHealthy)
            do {
                ops = try OpsServer(host: configuration.opsBind, port: port, metrics: metrics) {
                    if !healthy.isSet { return (false, "redis unreachable") }
                    if dispatcher.breaker == .open { return (false, "circuit breaker open") }
                    if dispatcher.isQuiet { return (false, "quiet or shutting down") }
                    return (true, "ok")
                }
            } catch {
                // The executor's loop thread is already running and holds the executor:
                // end it, or every failed start (the port taken) leaves a thread behind.
                Task.detached { await executor.shutdown() }
                throw error
            }
        } else {
            ops = nil
        }
    }

    public var opsPort: Int? { ops?.port }

    /// Stop fetching; in-flight jobs finish (SIGTSTP, the Web UI's Quiet).
    public func quiet() { dispatcher.quiet() }

    /// Quiet, wait up to the shutdown timeout, push back the rest, return from `run` (SIGTERM, Stop).
    public func stop(timeout: Duration? = nil) {
        dispatcher.stop(timeout: timeout ?? configuration.shutdownTimeout)
    }

    /// Runs until stopped.
    public func run() async throws {
        try await checkRedis()
        logger.notice(
            "courier starting",
            metadata: [
                "identity": "\(identity)", "queues": "\(configuration.plan.names.joined(separator: ","))",
                "mode": "\(configuration.plan.mode.rawValue)", "concurrency": "\(configuration.concurrency)",
                "executor": "\(configuration.executor.baseURL)", "redis": "\(configuration.redis.redacted)",
                "namespace": "\(configuration.namespace ?? "")", "ops_port": "\(opsPort.map(String.init) ?? "off")",
            ])
        await beatOnce()  // the process hash must exist before any job is fetched
        await recoverOrphans()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.watchers.run(logger: self.logger) }
            group.addTask { await self.housekeepingLoop() }
            group.addTask { await self.schedulerLoop() }
            group.addTask { await self.periodicLoop() }
            await dispatcher.run()
            group.cancelAll()
        }
        await finish()
    }

    private func checkRedis() async throws {
        do {
            let info = try await housekeeping.run { connection throws(RedisError) in
                try connection.command(["INFO", "server"]).orThrow("INFO").string ?? ""
            }
            redisHealthy.set(true)
            let version = info.split(separator: "\r\n").first { $0.hasPrefix("redis_version:") }?.dropFirst(14) ?? ""
            let parts = version.split(separator: ".").compactMap { Int($0) }
            if parts.count >= 2, (parts[0], parts[1]) < (6, 2) {
                throw ConfigurationError("REDIS_URL", "Redis \(version) is too old: courier needs 6.2 or newer (BLMOVE)")
            }
            let policy = try await housekeeping.run { connection throws(RedisError) in
                try connection.command(["CONFIG", "GET", "maxmemory-policy"])
            }
            if let value = policy.array?.last?.string, value != "noeviction" {
                logger.warning("Redis maxmemory-policy is '\(value)': Redis may evict jobs. Use noeviction.")
            }
        } catch let error as RedisError where error.isConnectionProblem {
            logger.warning("Redis not reachable at start; retrying in the background", metadata: ["error": "\(error)"])
        } catch let error as RedisError where error.code == .replyError {
            logger.debug("Redis refused a start-up check", metadata: ["error": "\(error)"])
        }
    }

    private func beatOnce() async {
        do {
            let limit = dispatcher.tokenLimit
            let state = CourierProcessState(breaker: dispatcher.breaker.rawValue, inFlight: dispatcher.heldCount, concurrency: limit)
            metrics.setConcurrencyLimit(limit)
            let result = try await heartbeat.beat(busy: dispatcher.busyJobs(), quiet: dispatcher.isQuiet, state: state)
            redisHealthy.set(true)
            processCount.store(result.processCount, ordering: .relaxed)
            metrics.queues(depth: result.depth, latency: result.latency, sets: result.sets)
            for signal in result.signals { handle(signal: signal) }
            dispatcher.afterHeartbeat(cancelRequests: result.cancelRequests)
        } catch {
            redisFailed(error, "heartbeat failed")
            dispatcher.afterHeartbeat(cancelRequests: [])
            return
        }
        // Its own message: the beat itself was written, only the limiter leases were not renewed.
        do {
            try await leases?.renew()
        } catch {
            redisFailed(error, "limiter lease renewal failed")
        }
    }

    /// A housekeeping call to Redis failed: not ready until the next beat succeeds.
    private func redisFailed(_ error: any Error, _ message: Logger.Message) {
        redisHealthy.set(false)
        metrics.redisError(error.metricKind)
        logger.warning(message, metadata: ["error": "\(error)"])
    }

    private func handle(signal: String) {
        switch ProcessSignal(rawValue: signal) {
        case .quiet: logger.notice("quiet requested from the Web UI"); quiet()
        case .stop: logger.notice("stop requested from the Web UI"); stop()
        case .dump: logInFlight()
        case nil: logger.warning("No signal handler registered, ignoring", metadata: ["signal": "\(signal)"])
        }
    }

    /// Logs every job in flight (SIGTTIN, `Process#dump_threads`).
    public func logInFlight() {
        let busy = dispatcher.busyJobs()
        logger.notice("jobs in flight", metadata: ["count": "\(busy.count)"])
        for job in busy {
            logger.notice(
                "busy job",
                metadata: [
                    "queue": "\(job.queue)", "run_at": "\(job.runAt)",
                    "payload": "\(String(decoding: job.payload.prefix(500), as: UTF8.self))",
                ])
        }
    }

    private func housekeepingLoop() async {
        var beatsUntilRecovery = Int.random(in: 2...4)
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.heartbeatInterval)
            if Task.isCancelled { break }
            await beatOnce()
            beatsUntilRecovery -= 1
            if beatsUntilRecovery <= 0 {
                await recoverOrphans()
                beatsUntilRecovery = Int.random(in: 2...4)
            }
        }
    }

    private func recoverOrphans() async {
        do {
            let result = try await recovery.recoverOrphans()
            if result.recovered > 0 || !result.goneProcesses.isEmpty {
                metrics.recovered(result.recovered)
                logger.notice(
                    "recovered jobs of processes that died",
                    metadata: ["count": "\(result.recovered)", "processes": "\(result.goneProcesses.joined(separator: ","))"])
            }
            let limit = configuration.maxRecoveries
            let policy = OutcomePolicy(maxRetries: configuration.maxRetries)
            for job in result.poisonPills {
                let reason = "recovered from dead courier processes more than \(limit) times: a poison pill that kills its process"
                let decision: Decision
                if let payload = try? JobPayload(raw: job.original) {
                    decision = policy.jobFailed(
                        job, payload: payload, failure: JobFailure(errorClass: "Courier::PoisonPill", errorMessage: reason, retryAction: "kill"))
                } else {
                    decision = policy.malformed(job, payload: nil, reason: reason)
                }
                dispatcher.adopt(job, decision: decision)
            }
        } catch {
            metrics.redisError(error.metricKind)
            logger.warning("recovery check failed", metadata: ["error": "\(error)"])
        }
    }

    private func schedulerLoop() async {
        // As Sidekiq: 10 s plus up to 5 s of jitter before the first poll; with
        // an average interval configured, only the jitter.
        let initial: Duration = (configuration.pollIntervalAverage == nil ? .seconds(10) : .zero) + .milliseconds(Int.random(in: 0..<5000))
        try? await Task.sleep(for: initial)
        while !Task.isCancelled && !dispatcher.isQuiet {
            do {
                let moved = try await scheduler.enqueueDue()
                if moved > 0 { logger.debug("enqueued due jobs", metadata: ["count": "\(moved)"]) }
            } catch {
                metrics.redisError(error.metricKind)
                logger.warning("scheduler poll failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(
                for: Scheduler.pollInterval(
                    processCount: processCount.load(ordering: .relaxed),
                    average: configuration.pollIntervalAverage))
        }
    }

    /// Periodic jobs: every pass takes or renews the lease; the holder enqueues the ticks due
    /// (PeriodicPlan: within each job's grace window, each once by its tick key). Passes run at
    /// the next tick and at least every third of the lease. Quiet ends it and gives the lease up.
    private func periodicLoop() async {
        guard let periodic else { return }
        let jobs = configuration.periodic
        let lease = configuration.periodicLease
        let renewEvery = Double(lease.components.seconds) / 3 + Double(lease.components.attoseconds) / 3e18
        // The last tick handled per job while this process leads; nil while it does not.
        var since: [String: Int]?
        var lastPublish = 0
        while !Task.isCancelled && !dispatcher.isQuiet {
            let now = WallClock.system.now()
            let second = Int(now.rounded(.down))
            do {
                let (leader, holder) = try await periodic.acquire()
                if leader {
                    if since == nil {
                        since = try await periodic.lastTicks()
                        logger.notice("periodic leader: this process enqueues periodic jobs", metadata: ["jobs": "\(jobs.count)"])
                        lastPublish = 0
                    }
                    var ticks: [PeriodicTick] = []
                    for job in jobs {
                        let plan = PeriodicPlan.plan(job, now: second, since: since?[job.name])
                        if plan.skipped > 0 {
                            logger.warning(
                                "periodic ticks missed beyond the grace window, skipped",
                                metadata: ["job": "\(job.name)", "skipped": "\(plan.skipped)", "grace": "\(job.grace)"])
                        }
                        ticks += plan.due.map { PeriodicTick(job: job, epoch: $0, now: now) }
                        let previous = since?[job.name] ?? 0
                        since?[job.name] = max(plan.due.last ?? second, previous)
                    }
                    if let enqueued = try await periodic.enqueue(ticks) {
                        for tick in ticks { logger.debug("periodic tick", metadata: ["job": "\(tick.job.name)", "tick": "\(tick.epoch)"]) }
                        if enqueued > 0 { logger.info("enqueued periodic jobs", metadata: ["count": "\(enqueued)"]) }
                        if second - lastPublish >= 5 {
                            try await periodic.publish(jobs, now: second)
                            lastPublish = second
                        }
                    } else {
                        since = nil
                        logger.notice("periodic lease lost before enqueueing; another courier leads")
                    }
                } else if since != nil {
                    since = nil
                    logger.notice("periodic lease held by another courier", metadata: ["leader": "\(holder ?? "")"])
                }
            } catch {
                // A leader that cannot reach Redis stops counting itself leader: its lease expires.
                since = nil
                metrics.redisError(error.metricKind)
                logger.warning("periodic pass failed", metadata: ["error": "\(error)"])
            }
            let after = WallClock.system.now()
            let nextTick = jobs.compactMap { $0.schedule.next(after: Int(after.rounded(.down))) }.min().map(Double.init) ?? after + renewEvery
            let wake = min(nextTick + 0.005, after + renewEvery)
            try? await Task.sleep(for: .milliseconds(max(10, Int((wake - after) * 1000))))
        }
        if since != nil {
            try? await periodic.release()
            logger.notice("periodic lease released")
        }
    }

    private func finish() async {
        // After the dispatcher, before Redis: every transfer still out (a job pushed back at
        // the deadline, an exhausted-hook or cancel call) completes now, and the HTTP thread ends.
        await executor.shutdown()
        ops?.stop()
        // A connection idle since a Redis restart fails once before it reconnects: try a few times.
        for attempt in 1...3 {
            do {
                try await heartbeat.clear()
                let held = try await recovery.retire()
                if held > 0 { logger.warning("jobs left in progress at exit; a survivor will push them back", metadata: ["count": "\(held)"]) }
                break
            } catch {
                if attempt == 3 {
                    logger.error("could not unregister from Redis at exit; the process entry expires by itself", metadata: ["error": "\(error)"])
                } else {
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
        }
        logger.notice("courier stopped")
    }
}

extension HTTPExecutor: JobExecutor {}

/// A flag shared with the ops server's readiness check.
final class HealthFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set(_ on: Bool) { value.store(on, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}
