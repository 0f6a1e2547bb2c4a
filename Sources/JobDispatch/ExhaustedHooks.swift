import ExecutorProtocol
import Logging
import Synchronization

/// Calls the executor's `/v1/jobs/exhausted` for jobs that died, so the app's
/// `sidekiq_retries_exhausted` block and death handlers run as under Sidekiq.
/// The job is already in the dead set; the call must not be lost because the
/// sidecar was restarting. Only a call the executor certainly did not run is
/// asked again — the request never left (connect refused, …) or the answer was
/// 429/503 — with backoff (1 s doubling to 60 s, or its Retry-After) for up to
/// `maxAttempts`. Anything else (a 5xx or a connection that broke after
/// sending: the hooks may have run; 4xx: they never will) is not repeated, so
/// death handlers run at most once, as in Sidekiq. Pending calls live in this
/// process only: `stop()` ends the waiting, and the dispatcher logs how many
/// were still outstanding at exit. Each wait for a next attempt is a task this
/// object keeps until it ends; `stop()` cancels and awaits them, so none
/// outlives the dispatcher.
final class ExhaustedHooks: Sendable {
    private let executor: JobExecutor
    private let logger: Logger
    private let metrics: any DispatchMetrics
    private let maxAttempts: Int
    private let firstDelay: Duration
    private let outstandingCalls = Atomic<Int>(0)
    private let waits = Mutex(Waits())

    /// The tasks waiting to make a next attempt, by a number of their own.
    private struct Waits: ~Copyable {
        var stopped = false
        var next = 0
        var tasks: [Int: Task<Void, Never>] = [:]
    }

    init(executor: JobExecutor, logger: Logger, metrics: any DispatchMetrics, maxAttempts: Int = 20, firstDelay: Duration = .seconds(1)) {
        self.executor = executor
        self.logger = logger
        self.metrics = metrics
        self.maxAttempts = maxAttempts
        self.firstDelay = firstDelay
    }

    /// Calls not finished yet: in flight or waiting for their next attempt.
    var outstanding: Int { outstandingCalls.load(ordering: .relaxed) }

    /// No more attempts: the calls waiting for their next one are cancelled (they stay
    /// counted in `outstanding`: the dispatcher logs them as dropped at exit) and awaited;
    /// a call still in flight gives up when its answer comes.
    func stop() async {
        let tasks = waits.withLock { w in
            w.stopped = true
            return Array(w.tasks.values)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    private var isStopped: Bool { waits.withLock { $0.stopped } }

    func call(_ request: ExecutionRequest) {
        outstandingCalls.add(1, ordering: .relaxed)
        attempt(request, number: 1)
    }

    private func attempt(_ request: ExecutionRequest, number: Int) {
        executor.post(request) { [self] result in
            let retryAfter: Duration?
            switch result {
            case let .response(status, _, _) where (200..<300).contains(status):
                metrics.exhaustedHook("ok")
                if number > 1 {
                    logger.notice("exhausted hooks ran after retrying", metadata: ["jid": .string(request.jid), "attempts": .string(String(number))])
                }
                return done()
            case let .response(status, _, header) where status == 429 || status == 503:
                retryAfter = OutcomeClassifier.parseRetryAfter(header)
            case .transportError(_, sent: false, _):
                retryAfter = nil
            default:
                return given(up: request, attempts: number, why: "\(result)")
            }
            guard number < maxAttempts, !isStopped else {
                return given(up: request, attempts: number, why: "\(result)")
            }
            metrics.exhaustedHook("retried")
            var delay = firstDelay * (1 << min(number - 1, 6))
            if delay > .seconds(60) { delay = .seconds(60) }
            if let retryAfter, retryAfter > delay { delay = retryAfter }
            if number == 1 {
                logger.warning(
                    "exhausted hooks not taken by the executor; retrying",
                    metadata: [
                        "jid": .string(request.jid), "result": .string("\(result)"), "in_s": .string(String(delay.components.seconds)),
                    ])
            }
            retry(request, number: number + 1, after: delay, result: result)
        }
    }

    /// Makes attempt `number` after `delay`, in a task kept in `waits` until it ends.
    private func retry(_ request: ExecutionRequest, number: Int, after delay: Duration, result: HTTPResult) {
        let started = waits.withLock { w -> Bool in
            guard !w.stopped else { return false }
            let id = w.next
            w.next += 1
            // Inserted under the lock, before the task can look for itself to leave.
            w.tasks[id] = Task { [self] in
                defer { _ = waits.withLock { $0.tasks.removeValue(forKey: id) } }
                try? await Task.sleep(for: delay)
                // Stopped while waiting: dropped, still counted in `outstanding` for the exit line.
                guard !Task.isCancelled, !isStopped else { return }
                attempt(request, number: number)
            }
            return true
        }
        if !started { given(up: request, attempts: number - 1, why: "\(result)") }
    }

    private func done() { outstandingCalls.subtract(1, ordering: .relaxed) }

    private func given(up request: ExecutionRequest, attempts: Int, why: String) {
        metrics.exhaustedHook("failed")
        logger.error(
            "exhausted hooks did not run",
            metadata: [
                "jid": .string(request.jid), "attempts": .string(String(attempts)), "result": .string(why),
            ])
        done()
    }
}
