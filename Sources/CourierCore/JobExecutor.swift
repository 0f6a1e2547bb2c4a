import ExecutorClient

/// Runs jobs somewhere (the HTTP executor in production). The dispatcher
/// sees only this.
public protocol JobExecutor: Sendable {
    /// Starts one delivery; `completion` is called once, on any thread.
    func submit(_ request: ExecutionRequest, completion: @escaping @Sendable (ExecutionOutcome) -> Void)
    /// Starts one delivery of several jobs; `completion` gets one outcome per job, in order.
    func submitBatch(_ requests: [ExecutionRequest], completion: @escaping @Sendable ([ExecutionOutcome]) -> Void)
    /// One POST whose raw answer the caller classifies itself (the exhausted hooks).
    func post(_ request: ExecutionRequest, completion: @escaping @Sendable (HTTPResult) -> Void)
}

extension HTTPExecutor: JobExecutor {}
