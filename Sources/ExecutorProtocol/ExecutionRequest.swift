// Protocol v1's request and raw answer as values: what courier sends the
// executor and how an HTTP exchange ended, before outcome classification.
// No transport here, so the dispatcher core can use them without libcurl.

/// One request to the executor: a POST (jobs, hooks, cancels), or a GET (health).
public struct ExecutionRequest: Sendable {
    /// `GET` is used for `/v1/health` and carries no signature or `Courier-*` headers; a POST does.
    public enum Method: String, Sendable { case post = "POST", get = "GET" }
    /// POST unless set otherwise (health checks use GET).
    public var method: Method = .post
    /// Path below the executor's base URL, e.g. `/v1/jobs`, `/v1/jobs/batch`, `/v1/jobs/cancel`.
    public var path: String
    /// The exact bytes sent (for a job: the payload as read from Redis); the signature covers them.
    public var body: [UInt8]
    /// Sent as `Courier-Jid` (informational; a batch joins its jids with commas).
    public var jid: String
    /// Sent as `Courier-Queue`: the queue the job was fetched from, without `queue:`.
    public var queue: String
    /// Sent as `Courier-Attempt`: 1 for the first run, `retry_count + 2` for a retry.
    public var attempt: Int
    /// Overrides the configured job timeout (a batch gets the sum of its jobs').
    public var timeout: Duration?
    /// The job's tenant (courier's `--tenant-key`): `Courier-Tenant` on `/v1/jobs`, `"tenant"` in a batch or stream entry.
    public var tenant: String?
    /// The payload's valid W3C `traceparent`: a `traceparent` header on `/v1/jobs`, a `"traceparent"` field in an entry.
    public var traceparent: String?

    /// A POST; `timeout` nil means the configured job timeout.
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
    /// A complete HTTP answer; `retryAfter` is the raw `Retry-After` header, if any.
    case response(status: Int, body: [UInt8], retryAfter: String?)
    /// No (complete) answer. `sent`: the request left this process; `timedOut`: the transfer timeout hit.
    case transportError(reason: String, sent: Bool, timedOut: Bool)
}
