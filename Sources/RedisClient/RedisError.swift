// Errors from the Redis layer, with what was being done, and whether the
// connection is to blame (the caller then reconnects).
import CourierSupport
/// An error from the Redis layer, with what was being done when it happened.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What went wrong; `isConnectionProblem` groups the codes the caller retries after reconnecting.
    public enum Code: Sendable, Equatable {
        /// REDIS_URL could not be understood.
        case invalidURL
        /// Connecting, authenticating or selecting the database failed.
        case connectFailed
        /// The connection broke or timed out mid-command; the connection is discarded.
        case connectionLost
        /// Redis answered with an error reply (`-ERR ...`).
        case replyError
        /// A reply had a shape the caller did not expect.
        case unexpectedReply
        /// Still backing off after a failed connect; not tried this time.
        case backingOff
    }
    /// What kind of failure it was.
    public let code: Code
    /// What was being done and what Redis or hiredis said, e.g. `"AUTH for redis://…: WRONGPASS …"`.
    public let message: String

    /// An error of `code`; `message` should say what was being done.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// True when the connection itself is at fault (retry after reconnecting).
    public var isConnectionProblem: Bool {
        code == .connectFailed || code == .connectionLost || code == .backingOff
    }

    /// `Redis <code>: <message>`, for logs.
    public var description: String { "Redis \(code): \(message)" }
}

extension RedisError: KindedError {
    /// `courier_redis_errors_total{kind}`: `timeout` (a command or connect that
    /// ran out of time: hiredis reports EAGAIN or ETIMEDOUT), `connection` (refused,
    /// reset, reconnect backoff), `script` (a Lua script's error reply), `reply`
    /// (any other error reply, or a reply of an unexpected shape).
    public var kind: String {
        switch code {
        case .connectFailed, .connectionLost, .backingOff, .invalidURL:
            message.contains("temporarily unavailable") || message.contains("timed out") ? "timeout" : "connection"
        case .replyError:
            message.hasPrefix("script ") || message.contains("NOSCRIPT") ? "script" : "reply"
        case .unexpectedReply:
            "reply"
        }
    }
}
