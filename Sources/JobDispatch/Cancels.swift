import CourierSupport
import ExecutorProtocol
import Logging
import Synchronization

// Protocol v1's cancel, courier's side: whether the executor may be asked at
// all (the `features` of its `GET /v1/health`, read at start-up, after the
// breaker closes, and at each beat while not known), sending
// `POST /v1/jobs/cancel` through the HTTP loop without waiting for it, and at
// exit a bounded wait for the answers still out. What a cancel means for the
// job is decided elsewhere (the dispatcher and OutcomePolicy); this only talks
// to the executor, logs and counts.
final class JobCancels: Sendable {
    private enum Support: UInt8 { case unknown, supported, unsupported }

    /// How long one cancel request may take; also about how long exit waits for the answers.
    static let requestTimeout: Duration = .seconds(1)
    static let healthTimeout: Duration = .seconds(5)

    private let executor: JobExecutor
    private let logger: Logger
    private let metrics: any DispatchMetrics
    private let support = Atomic<UInt8>(Support.unknown.rawValue)
    private let probing = Atomic<Bool>(false)
    private let outstanding = Atomic<Int>(0)
    private let answered = WakeSignal()
    private let lastHealth = Mutex<ExecutorHealth?>(nil)

    /// `--batch`, so each health answer also sets `jobsPerRequest`.
    private let batch: BatchSetting
    /// The most jobs one request carries under the last health answer (DeliveryPlan.perRequest),
    /// read on every turn of the dispatcher without a lock.
    let jobsPerRequest: Atomic<Int>

    init(executor: JobExecutor, logger: Logger, metrics: any DispatchMetrics, batch: BatchSetting = .auto) {
        self.batch = batch
        self.jobsPerRequest = Atomic(DeliveryPlan.perRequest(setting: batch, health: nil))
        self.executor = executor
        self.logger = logger
        self.metrics = metrics
    }

    /// The executor said it has the cancel feature at its last health answer.
    var isSupported: Bool { support.load(ordering: .relaxed) == Support.supported.rawValue }
    /// No health answer yet (the executor was not up, or answered something else).
    var isUnknown: Bool { support.load(ordering: .relaxed) == Support.unknown.rawValue }

    /// The executor's last health answer (its features and capacity); nil until one was read.
    var health: ExecutorHealth? { lastHealth.withLock { $0 } }

    /// Reads the executor's features again (one request at a time).
    func probe() {
        guard !probing.exchange(true, ordering: .acquiringAndReleasing) else { return }
        executor.get("/v1/health", timeout: Self.healthTimeout) { [self] answer in
            defer { probing.store(false, ordering: .releasing) }
            guard let health = ExecutorHealth(answer: answer) else {
                logger.debug("executor health not read; cancel support unknown", metadata: ["answer": .string("\(answer)")])
                return
            }
            let features = health.features
            jobsPerRequest.store(DeliveryPlan.perRequest(setting: batch, health: health), ordering: .relaxed)
            let before = lastHealth.withLock { last in
                defer { last = health }; return last
            }
            if health.offersStreams && before != health {
                logger.notice(
                    "executor offers streamed batches: jobs fetched together go in streams",
                    metadata: [
                        "capacity": .string(health.capacity.map(String.init) ?? "?"),
                        "jobs_per_stream": .string(String(health.jobsPerStream)),
                    ])
            }
            let now: Support = features.contains(CancelProtocol.feature) ? .supported : .unsupported
            if support.exchange(now.rawValue, ordering: .relaxed) != now.rawValue {
                logger.notice(
                    now == .supported
                        ? "executor supports cancel: running jobs given up on are interrupted there"
                        : "executor does not support cancel: jobs given up on keep running there",
                    metadata: ["features": .string(features.sorted().joined(separator: ","))])
            }
        }
    }

    /// Asks the executor to interrupt the running job `jid`; returns at once.
    func send(jid: String, queue: String, attempt: Int, reason: CancelReason) {
        guard !jid.isEmpty else { return }
        let metadata: Logger.Metadata = ["jid": .string(jid), "queue": .string(queue), "reason": .string(reason.rawValue)]
        guard isSupported else {
            metrics.cancel(reason: reason.rawValue, result: CancelResult.unsupported.label)
            let level: Logger.Level = reason == .cancel ? .warning : .debug
            logger.log(
                level: level, "cancel not sent: the executor does not advertise the cancel feature; the job keeps running there", metadata: metadata)
            return
        }
        outstanding.add(1, ordering: .relaxed)
        logger.notice("asking the executor to cancel the job", metadata: metadata)
        let request = ExecutionRequest(
            path: CancelProtocol.path, body: CancelProtocol.body(jid: jid, reason: reason), jid: jid, queue: queue,
            attempt: attempt, timeout: Self.requestTimeout)
        executor.post(request) { [self] answer in
            let result = CancelProtocol.result(of: answer)
            metrics.cancel(reason: reason.rawValue, result: result.label)
            var m = metadata
            m["result"] = .string(result.label)
            switch result {
            case .cancelled, .notRunning:
                logger.info("executor answered the cancel", metadata: m)
            case .unsupported:
                // The executor was replaced by one without the endpoint: stop asking until its health says otherwise.
                support.store(Support.unsupported.rawValue, ordering: .relaxed)
                logger.warning("executor has no cancel endpoint (404); cancels stop until its health lists the feature", metadata: m)
            case let .failed(why):
                m["error"] = .string(why)
                logger.warning("cancel request failed; the job may keep running in the executor", metadata: m)
            }
            outstanding.subtract(1, ordering: .relaxed)
            answered.signal()
        }
    }

    /// Waits until every cancel sent has its answer, or until `deadline`.
    func drain(until deadline: ContinuousClock.Instant) async {
        while outstanding.load(ordering: .relaxed) > 0 {
            let left = deadline - .now
            if left <= .zero {
                logger.notice(
                    "exiting without the executor's answer to some cancels",
                    metadata: ["count": .string(String(outstanding.load(ordering: .relaxed)))])
                return
            }
            await answered.wait(timeout: left)
        }
    }
}
