// The dispatcher's view of the executor: deliveries and the few other calls
// protocol v1 has (hooks, cancels, health).
import ExecutorProtocol

/// Runs jobs somewhere (the HTTP executor in production). The dispatcher
/// sees only this.
public protocol JobExecutor: Sendable {
    /// Starts one delivery; `completion` is called once, on any thread.
    func submit(_ request: ExecutionRequest, completion: @escaping @Sendable (ExecutionOutcome) -> Void)
    /// Starts one delivery of several jobs; `completion` gets one outcome per job, in order.
    func submitBatch(_ requests: [ExecutionRequest], completion: @escaping @Sendable ([ExecutionOutcome]) -> Void)
    /// Starts one streamed delivery of several jobs (`/v1/jobs/stream`); `outcomes` gets
    /// the jobs (by index) whose answers arrived together, as they arrive: each job once.
    func submitStream(_ requests: [ExecutionRequest], outcomes: @escaping @Sendable ([(Int, ExecutionOutcome)]) -> Void)
    /// One POST whose raw answer the caller classifies itself (the exhausted hooks, cancels).
    func post(_ request: ExecutionRequest, completion: @escaping @Sendable (HTTPResult) -> Void)
    /// One GET (the executor's health and features), answered raw.
    func get(_ path: String, timeout: Duration, completion: @escaping @Sendable (HTTPResult) -> Void)
}

extension JobExecutor {
    /// An executor without streams answers a stream's jobs all at once, as a batch.
    public func submitStream(_ requests: [ExecutionRequest], outcomes: @escaping @Sendable ([(Int, ExecutionOutcome)]) -> Void) {
        submitBatch(requests) { results in outcomes(Array(results.enumerated())) }
    }
}
