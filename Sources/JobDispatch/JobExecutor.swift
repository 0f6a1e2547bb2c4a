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
    /// Starts one streamed delivery of several jobs (`/v1/jobs/stream`); `outcome` is
    /// called once per job, by its index, as each answer arrives.
    func submitStream(_ requests: [ExecutionRequest], outcome: @escaping @Sendable (Int, ExecutionOutcome) -> Void)
    /// One POST whose raw answer the caller classifies itself (the exhausted hooks, cancels).
    func post(_ request: ExecutionRequest, completion: @escaping @Sendable (HTTPResult) -> Void)
    /// One GET (the executor's health and features), answered raw.
    func get(_ path: String, timeout: Duration, completion: @escaping @Sendable (HTTPResult) -> Void)
}

extension JobExecutor {
    /// An executor without streams answers a stream's jobs all at once, as a batch.
    public func submitStream(_ requests: [ExecutionRequest], outcome: @escaping @Sendable (Int, ExecutionOutcome) -> Void) {
        submitBatch(requests) { results in
            for (index, result) in results.enumerated() { outcome(index, result) }
        }
    }
}
