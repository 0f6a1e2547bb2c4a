// An error that names its kind for metrics, so the dispatcher can count
// Redis failures by kind (`courier_redis_errors_total{kind}`) without
// knowing the Redis client's error type (dependencies point inward).

/// An error with a short, bounded kind label (e.g. `connection`, `timeout`, `reply`, `script`).
public protocol KindedError: Error {
    /// One of a small fixed set of words: it becomes a metric label.
    var kind: String { get }
}

extension Error {
    /// The error's kind label, `other` for errors that name none.
    public var metricKind: String { (self as? any KindedError)?.kind ?? "other" }
}
