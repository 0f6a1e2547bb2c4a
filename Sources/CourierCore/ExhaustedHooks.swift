import ExecutorClient
import Logging
import Synchronization

/// Calls the executor's `/v1/jobs/exhausted` for jobs that died, so the app's
/// `sidekiq_retries_exhausted` block and death handlers run as under Sidekiq.
/// The job is already in the dead set; the call must not be lost because the
/// sidecar was restarting: an executor that did not take it (connect error,
/// 429/5xx before running) is asked again with backoff (1 s doubling to 60 s,
/// or its Retry-After) for up to `maxAttempts`. A call that may have run
/// (connection broke after sending, timeout) is not repeated: death handlers
/// run at most once, as in Sidekiq. Pending calls live in this process only;
/// any still waiting at exit are logged.
final class ExhaustedHooks: Sendable {
    private let executor: JobExecutor
    private let logger: Logger
    private let metrics: CourierMetrics
    private let maxAttempts: Int
    private let firstDelay: Duration
    private let pending = Atomic<Int>(0)

    init(executor: JobExecutor, logger: Logger, metrics: CourierMetrics, maxAttempts: Int = 20, firstDelay: Duration = .seconds(1)) {
        self.executor = executor
        self.logger = logger
        self.metrics = metrics
        self.maxAttempts = maxAttempts
        self.firstDelay = firstDelay
    }

    /// Calls still waiting for a retry.
    var waiting: Int { pending.load(ordering: .relaxed) }

    func call(_ request: ExecutionRequest) { attempt(request, number: 1) }

    private func attempt(_ request: ExecutionRequest, number: Int) {
        executor.submit(request) { [self] outcome in
            switch outcome {
            case .succeeded:
                metrics.exhaustedHook("ok")
                if number > 1 { logger.notice("exhausted hooks ran after retrying", metadata: ["jid": .string(request.jid), "attempts": .string(String(number))]) }
            case let .executorUnavailable(reason, retryAfter, false) where number < maxAttempts:
                metrics.exhaustedHook("retried")
                var delay = firstDelay * (1 << min(number - 1, 6))
                if delay > .seconds(60) { delay = .seconds(60) }
                if let retryAfter, retryAfter > delay { delay = retryAfter }
                if number == 1 {
                    logger.warning("exhausted hooks not taken by the executor; retrying", metadata: [
                        "jid": .string(request.jid), "reason": .string(reason), "in_s": .string(String(delay.components.seconds)),
                    ])
                }
                pending.add(1, ordering: .relaxed)
                Task {
                    try? await Task.sleep(for: delay)
                    self.pending.subtract(1, ordering: .relaxed)
                    self.attempt(request, number: number + 1)
                }
            default:
                metrics.exhaustedHook("failed")
                logger.error("exhausted hooks did not run", metadata: [
                    "jid": .string(request.jid), "attempts": .string(String(number)), "outcome": .string("\(outcome)"),
                ])
            }
        }
    }
}
