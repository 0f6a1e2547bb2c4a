import ExecutorClient

/// Runs jobs somewhere (the HTTP executor in production). The dispatcher
/// sees only this.
public protocol JobExecutor: Sendable {
    /// Starts one delivery; `completion` is called once, on any thread.
    func submit(_ request: ExecutionRequest, completion: @escaping @Sendable (ExecutionOutcome) -> Void)
}

extension HTTPExecutor: JobExecutor {}
