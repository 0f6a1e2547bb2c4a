// A Sidekiq job as it sits in Redis: the original bytes, plus an index of its
// top-level members so Courier can read fields and, when Sidekiq's semantics
// require a change (retry fields), edit single members while every other byte
// — unknown keys, custom serialisation, float formatting — stays as it was.

import Glibc

/// Why a payload cannot be run; such a job goes to the dead set with the reason.
public struct MalformedJob: Error, Sendable, CustomStringConvertible {
    /// The reason in words; it becomes the dead entry's `error_message` (error class `Courier::MalformedJob`).
    public let reason: String
    /// A failure with `reason` as its message.
    public init(_ reason: String) { self.reason = reason }
    /// The reason, unchanged.
    public var description: String { reason }
}

/// One Sidekiq job payload.
public struct JobPayload: Sendable {
    /// The job JSON exactly as read from Redis.
    public let raw: [UInt8]
    private let members: [(key: String, range: Range<Int>)]

    /// Indexes `raw`; throws when it is not a JSON object.
    public init(raw: [UInt8]) throws(MalformedJob) {
        self.raw = raw
        do {
            members = try JSONReader.objectMembers(raw)
        } catch {
            throw MalformedJob("job is not valid JSON: \(error)")
        }
    }

    /// Checks the fields Sidekiq itself needs to run a job.
    public func validate() throws(MalformedJob) {
        guard let cls = self["class"] else { throw MalformedJob("job has no \"class\"") }
        guard case let .string(name) = cls, !name.isEmpty else { throw MalformedJob("job \"class\" is not a non-empty string") }
        guard let args = self["args"] else { throw MalformedJob("job has no \"args\"") }
        guard case .array = args else { throw MalformedJob("job \"args\" is not an array") }
        if let jid = self["jid"], jid.stringValue == nil { throw MalformedJob("job \"jid\" is not a string") }
        if let queue = self["queue"], queue.stringValue == nil { throw MalformedJob("job \"queue\" is not a string") }
    }

    /// Top-level keys in their order in `raw`, repeats included.
    public var keys: [String] { members.map(\.key) }

    /// The decoded value of a top-level member (the last one if repeated, as Ruby does).
    public subscript(key: String) -> JSONValue? {
        guard let range = rawRange(of: key) else { return nil }
        return try? JSONReader.decode(raw, range: range)
    }

    /// The exact source text of a member's value.
    public func rawValue(of key: String) -> String? {
        rawRange(of: key).map { String(decoding: raw[$0], as: UTF8.self) }
    }

    private func rawRange(of key: String) -> Range<Int>? {
        members.last { $0.key == key }?.range
    }

    /// `jid`: normally 24 hex characters from the client, or nil if missing or not a string.
    public var jid: String? { self["jid"]?.stringValue }
    /// `class`: the Ruby class Sidekiq runs (ActiveJob's wrapper for ActiveJob jobs); nil if missing or not a string.
    public var className: String? { self["class"]?.stringValue }
    /// `queue`: the queue name without the `queue:` prefix, as the client wrote it; nil if missing.
    public var queue: String? { self["queue"]?.stringValue }
    /// The class users know the job by: `display_class`, else ActiveJob's `wrapped`, else `class`
    /// (Sidekiq 6's log context); "unknown" when none is a string.
    public var displayClass: String {
        self["display_class"]?.stringValue ?? self["wrapped"]?.stringValue ?? className ?? "unknown"
    }
    /// The class Sidekiq 7's execution metrics count the job under: `wrapped`, else `class`
    /// (`display_class` is not looked at). Reuses `displayClass` when it is the same thing.
    public func metricsClass(displayClass: String) -> String {
        guard rawRange(of: "display_class") != nil else { return displayClass }
        return self["wrapped"]?.stringValue ?? className ?? "unknown"
    }
    /// Tenant by the default rule: a `tenant` field, else the first tag (`TenantRule` reads others).
    public var tenant: String? { TenantRule.default.tenant(of: self) }
    /// The payload's `traceparent` when it is a valid W3C value (nil otherwise: invalid ones are dropped).
    public var traceparent: String? {
        guard rawRange(of: "traceparent") != nil, let value = self["traceparent"]?.stringValue, TraceParent.isValid(value) else { return nil }
        return value
    }
    /// `enqueued_at` in epoch seconds: float seconds (Sidekiq ≤ 7), or integer
    /// milliseconds (Sidekiq 8), told apart by an integer literal past 1e11.
    /// Read from the bytes: it is read for every job (the latency metric), and
    /// decoding a `JSONValue` would allocate the number's text.
    public var enqueuedAt: Double? {
        guard let range = rawRange(of: "enqueued_at"), range.count < 64 else { return nil }
        return raw.withUnsafeBufferPointer { bytes -> Double? in
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { text -> Double? in
                var integer = true
                var count = 0
                for i in range {
                    let byte = bytes[i]
                    // JSON numbers only: a string, object or literal is not a time.
                    switch byte {
                    case 0x30...0x39, 0x2B, 0x2D: break
                    case 0x2E, 0x45, 0x65: integer = false
                    default: return nil
                    }
                    text[count] = CChar(bitPattern: byte)
                    count += 1
                }
                text[count] = 0
                var end: UnsafeMutablePointer<CChar>?
                let seconds = strtod(text.baseAddress!, &end)
                guard end == text.baseAddress! + count, seconds.isFinite else { return nil }
                return integer && seconds > 1e11 ? seconds / 1000 : seconds
            }
        }
    }

    /// A copy with members replaced (in place) or appended (before the closing
    /// brace), values given as JSON text, and members removed. Everything else
    /// is copied byte for byte.
    public func editing(set changes: [(String, String)], remove: Set<String> = []) -> JobPayload {
        var pending = changes
        var out: [UInt8] = []
        out.reserveCapacity(raw.count + changes.reduce(0) { $0 + $1.0.count + $1.1.count + 4 })
        var cursor = 0
        var wroteAny = false
        // Walk members in order; copy separators and untouched members verbatim.
        let lastIndexByKey = Dictionary(members.enumerated().map { ($0.element.key, $0.offset) }, uniquingKeysWith: { $1 })
        guard let openBrace = raw.firstIndex(of: UInt8(ascii: "{")), let closeBrace = raw.lastIndex(of: UInt8(ascii: "}")) else {
            return self
        }
        out.append(contentsOf: raw[...openBrace])
        cursor = openBrace + 1
        for (i, member) in members.enumerated() {
            // Locate the member's key start: search back from its value for the key's opening quote.
            let keyStart = keyStartIndex(before: member.range.lowerBound, from: cursor)
            let dropped = remove.contains(member.key) || (lastIndexByKey[member.key] != i && pending.contains { $0.0 == member.key })
            if dropped {
                cursor = member.range.upperBound
                continue
            }
            if wroteAny { out.append(UInt8(ascii: ",")) }
            if let at = pending.firstIndex(where: { $0.0 == member.key }) {
                out.append(contentsOf: raw[keyStart..<member.range.lowerBound])
                out.append(contentsOf: Array(pending[at].1.utf8))
                pending.remove(at: at)
            } else {
                out.append(contentsOf: raw[keyStart..<member.range.upperBound])
            }
            wroteAny = true
            cursor = member.range.upperBound
        }
        for (key, value) in pending {
            if wroteAny { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: Array((JSONWriter.string(key) + ":" + value).utf8))
            wroteAny = true
        }
        out.append(contentsOf: raw[closeBrace...])
        // The result is valid by construction; re-index it.
        return (try? JobPayload(raw: out)) ?? self
    }

    /// Index of the `"` that opens the key whose value starts at `valueStart`.
    private func keyStartIndex(before valueStart: Int, from lowerBound: Int) -> Int {
        // Skip back over whitespace and ':' to the key's closing quote, then to its opening quote.
        var i = valueStart - 1
        while i > lowerBound, raw[i] != UInt8(ascii: ":") { i -= 1 }
        i -= 1
        while i > lowerBound, raw[i] != UInt8(ascii: "\"") { i -= 1 }
        // i is the closing quote; walk back to an unescaped opening quote.
        i -= 1
        while i >= lowerBound {
            if raw[i] == UInt8(ascii: "\"") {
                var backslashes = 0
                var j = i - 1
                while j >= lowerBound, raw[j] == UInt8(ascii: "\\") { backslashes += 1; j -= 1 }
                if backslashes % 2 == 0 { return i }
            }
            i -= 1
        }
        return lowerBound
    }

    /// The payload as a string (UTF-8), for logs and tests.
    public var text: String { String(decoding: raw, as: UTF8.self) }
}
