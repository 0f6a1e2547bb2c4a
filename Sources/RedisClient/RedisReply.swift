// A Redis reply copied out of hiredis's memory into Swift values, so no C
// pointer outlives the call that produced it.
import CHiredis

/// A Redis reply copied out of hiredis's memory into Swift values.
public enum RedisReply: Sendable, Equatable {
    /// A bulk string, as raw bytes (job payloads are not decoded).
    case bulk([UInt8])
    /// A simple status such as `OK` or `QUEUED`.
    case status(String)
    case integer(Int)
    /// A multi-bulk reply; nil elements come back as `.null`.
    case array([RedisReply])
    /// A nil bulk or nil array (a missing key, a timed-out `BRPOP`).
    case null
    /// An error reply's text, e.g. `NOSCRIPT …`; `orThrow` turns it into a `RedisError`.
    case error(String)

    /// Copies a hiredis reply tree (the caller frees it).
    init(_ reply: UnsafeMutablePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            self = .bulk(r.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_STATUS:
            self = .status(String(cString: r.str))
        case REDIS_REPLY_ERROR:
            self = .error(String(cString: r.str))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int(r.integer))
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let child = r.element[i] { items.append(RedisReply(child)) } else { items.append(.null) }
            }
            self = .array(items)
        default:
            self = .null
        }
    }

    /// A bulk string's bytes; nil for any other kind (even a status).
    public var bytes: [UInt8]? {
        if case let .bulk(b) = self { return b }
        return nil
    }

    /// A bulk string decoded as UTF-8, or a status's text; nil otherwise.
    public var string: String? {
        switch self {
        case let .bulk(b): return String(decoding: b, as: UTF8.self)
        case let .status(s): return s
        default: return nil
        }
    }

    /// An integer reply, or a bulk string holding a decimal integer (as `HGET` returns counters); nil otherwise.
    public var int: Int? {
        switch self {
        case let .integer(i): return i
        case let .bulk(b): return Int(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    /// The elements of an array reply; nil otherwise.
    public var array: [RedisReply]? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// True for a nil reply (a missing key or a blocking pop that timed out).
    public var isNull: Bool { self == .null }

    /// Throws when the reply is an error reply.
    @discardableResult
    public func orThrow(_ context: @autoclosure () -> String) throws(RedisError) -> RedisReply {
        if case let .error(message) = self { throw RedisError(.replyError, "\(context()): \(message)") }
        return self
    }
}
