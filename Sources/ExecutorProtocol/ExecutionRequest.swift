// Protocol v1's request and raw answer as values: what courier sends the
// executor and how an HTTP exchange ended, before outcome classification.
// No transport here, so the dispatcher core can use them without libcurl.

/// One request to the executor: a POST (jobs, hooks, cancels), or a GET (health).
public struct ExecutionRequest: Sendable {
    public enum Method: String, Sendable { case post = "POST", get = "GET" }
    public var method: Method = .post
    public var path: String
    public var body: [UInt8]
    public var jid: String
    public var queue: String
    public var attempt: Int
    /// Overrides the configured job timeout (a batch gets the sum of its jobs').
    public var timeout: Duration?

    public init(path: String = "/v1/jobs", body: [UInt8], jid: String, queue: String, attempt: Int, timeout: Duration? = nil) {
        self.path = path
        self.body = body
        self.jid = jid
        self.queue = queue
        self.attempt = attempt
        self.timeout = timeout
    }
}

/// How one HTTP exchange with the executor ended, before protocol meaning is applied.
public enum HTTPResult: Sendable {
    case response(status: Int, body: [UInt8], retryAfter: String?)
    /// No (complete) answer. `sent`: the request left this process; `timedOut`: the transfer timeout hit.
    case transportError(reason: String, sent: Bool, timedOut: Bool)
}
