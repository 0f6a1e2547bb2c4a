// A small, strict JSON reader over bytes. Courier must never re-serialise a
// job it is not changing, so the reader reports where each top-level value
// sits in the original bytes as well as decoding values on demand.

/// A decoded JSON value.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's double value and its exact source text (to tell `1` from `1.0`).
    case number(Double, text: String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// Compares by value: numbers by their double (`1 == 1.0`), objects member by member in order.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x, _), .number(y, _)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// An object's member by key (the last one if the key repeats, as Ruby does); nil when missing or not an object.
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    /// The string, or nil for any other kind.
    public var stringValue: String? { if case let .string(s) = self { return s }; return nil }
    /// The number as a double, or nil for any other kind.
    public var doubleValue: Double? { if case let .number(d, _) = self { return d }; return nil }
    /// The number when it is whole and below 9e15 in magnitude (exact as a Double), else nil; `2.0` passes too, see `isIntegerLiteral`.
    public var intValue: Int? {
        guard case let .number(d, _) = self, d.rounded() == d, abs(d) < 9e15 else { return nil }
        return Int(d)
    }
    /// "array", "number", … (for messages).
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
    /// The boolean, or nil for any other kind (`null` is not `false`).
    public var boolValue: Bool? { if case let .bool(b) = self { return b }; return nil }
    /// The elements, or nil for any other kind.
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { return a }; return nil }
    /// True for an explicit JSON `null` (a missing member is nil, not `.null`).
    public var isNull: Bool { self == .null }
    /// True for a JSON number written without fraction or exponent.
    public var isIntegerLiteral: Bool {
        guard case let .number(_, text) = self else { return false }
        return !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
    }
}

/// Why a JSON text was rejected, with the byte offset.
public struct JSONError: Error, Sendable, CustomStringConvertible {
    /// Byte offset into the input where the reader stopped.
    public let offset: Int
    /// What was wrong there, e.g. `"bad escape"`.
    public let reason: String
    /// `invalid JSON at byte N: reason`; a malformed job's reason quotes it.
    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// Reads JSON from a byte buffer.
public struct JSONReader {
    private let bytes: UnsafeBufferPointer<UInt8>
    private(set) var index: Int
    private var depth = 0
    private static let maxDepth = 512

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        self.index = 0
    }

    /// Runs `body` with a reader over `data` (or the slice `range` of it); the
    /// buffer only lives inside `withUnsafeBufferPointer`, hence the Result.
    private static func reading<T>(
        _ data: [UInt8], range: Range<Int>? = nil,
        _ body: (inout JSONReader) throws(JSONError) -> T
    ) throws(JSONError) -> T {
        let result: Result<T, JSONError> = data.withUnsafeBufferPointer { whole in
            var reader = JSONReader(range.map { UnsafeBufferPointer(rebasing: whole[$0]) } ?? whole)
            do throws(JSONError) { return .success(try body(&reader)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Fails unless only whitespace is left.
    private mutating func expectEnd() throws(JSONError) {
        skipWhitespace()
        guard index == bytes.count else { throw fail("trailing characters") }
    }

    /// Parses a complete JSON document.
    public static func parse(_ data: [UInt8]) throws(JSONError) -> JSONValue {
        try reading(data) { (reader: inout JSONReader) throws(JSONError) in
            let value = try reader.readValue()
            try reader.expectEnd()
            return value
        }
    }

    /// Parses a complete JSON document from text (as UTF-8).
    public static func parse(_ text: String) throws(JSONError) -> JSONValue { try parse(Array(text.utf8)) }

    /// Reads a top-level object, validating every value but decoding none:
    /// returns each member's key and the byte range of its value.
    static func objectMembers(_ data: [UInt8]) throws(JSONError) -> [(key: String, range: Range<Int>)] {
        try reading(data) { (reader: inout JSONReader) throws(JSONError) in
            var members: [(key: String, range: Range<Int>)] = []
            reader.skipWhitespace()
            guard reader.peek() == UInt8(ascii: "{") else { throw reader.fail("expected a JSON object") }
            reader.index += 1
            reader.skipWhitespace()
            if reader.peek() == UInt8(ascii: "}") {
                reader.index += 1
            } else {
                while true {
                    reader.skipWhitespace()
                    let key = try reader.readString()
                    reader.skipWhitespace()
                    try reader.expect(UInt8(ascii: ":"))
                    reader.skipWhitespace()
                    let start = reader.index
                    try reader.skipValue()
                    members.append((key, start..<reader.index))
                    reader.skipWhitespace()
                    if reader.peek() == UInt8(ascii: ",") { reader.index += 1; continue }
                    try reader.expect(UInt8(ascii: "}"))
                    break
                }
            }
            try reader.expectEnd()
            return members
        }
    }

    /// Decodes one value from a slice known to be valid.
    static func decode(_ data: [UInt8], range: Range<Int>) throws(JSONError) -> JSONValue {
        try reading(data, range: range) { (reader: inout JSONReader) throws(JSONError) in try reader.readValue() }
    }

    func fail(_ reason: String) -> JSONError { JSONError(offset: index, reason: reason) }

    @inline(__always) func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func expect(_ byte: UInt8) throws(JSONError) {
        guard peek() == byte else { throw fail("expected '\(Character(Unicode.Scalar(byte)))'") }
        index += 1
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func readValue() throws(JSONError) -> JSONValue {
        skipWhitespace()
        guard let byte = peek() else { throw fail("unexpected end") }
        switch byte {
        case UInt8(ascii: "{"):
            try enter()
            defer { depth -= 1 }
            index += 1
            var members: [(String, JSONValue)] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { index += 1; return .object(members) }
            while true {
                skipWhitespace()
                let key = try readString()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                members.append((key, try readValue()))
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { index += 1; continue }
                try expect(UInt8(ascii: "}"))
                return .object(members)
            }
        case UInt8(ascii: "["):
            try enter()
            defer { depth -= 1 }
            index += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                items.append(try readValue())
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { index += 1; continue }
                try expect(UInt8(ascii: "]"))
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(try readString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            let start = index
            try skipNumber()
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            guard let value = Double(text) else { throw fail("bad number '\(text)'") }
            return .number(value, text: text)
        }
    }

    /// Validates a value without building it.
    mutating func skipValue() throws(JSONError) {
        skipWhitespace()
        guard let byte = peek() else { throw fail("unexpected end") }
        switch byte {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try enter()
            defer { depth -= 1 }
            let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
            index += 1
            skipWhitespace()
            if peek() == close { index += 1; return }
            while true {
                skipWhitespace()
                if close == UInt8(ascii: "}") {
                    try skipString()
                    skipWhitespace()
                    try expect(UInt8(ascii: ":"))
                }
                try skipValue()
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { index += 1; continue }
                try expect(close)
                return
            }
        case UInt8(ascii: "\""): try skipString()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try skipNumber()
        }
    }

    private mutating func enter() throws(JSONError) {
        depth += 1
        if depth > Self.maxDepth { throw fail("nested too deeply") }
    }

    private mutating func literal(_ word: StaticString) throws(JSONError) {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw fail("unexpected end") }
        for i in 0..<count where bytes[index + i] != word.utf8Start[i] { throw fail("bad literal") }
        index += count
    }

    private mutating func skipNumber() throws(JSONError) {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), isDigit(first) else { throw fail("expected a value") }
        if first == UInt8(ascii: "0") { index += 1 } else { while let b = peek(), isDigit(b) { index += 1 } }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let b = peek(), isDigit(b) else { throw fail("bad fraction") }
            while let b = peek(), isDigit(b) { index += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            index += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { index += 1 }
            guard let b = peek(), isDigit(b) else { throw fail("bad exponent") }
            while let b = peek(), isDigit(b) { index += 1 }
        }
        if index == start { throw fail("expected a value") }
    }

    private mutating func skipString() throws(JSONError) {
        try expect(UInt8(ascii: "\""))
        while index < bytes.count {
            let b = bytes[index]
            if b == UInt8(ascii: "\"") { index += 1; return }
            if b < 0x20 { throw fail("control character in string") }
            if b == UInt8(ascii: "\\") {
                index += 1
                guard let e = peek() else { break }
                if e == UInt8(ascii: "u") {
                    guard index + 4 < bytes.count, (1...4).allSatisfy({ isHex(bytes[index + $0]) }) else {
                        throw fail("bad \\u escape")
                    }
                    index += 5
                    continue
                }
                guard "\"\\/bfnrt".utf8.contains(e) else { throw fail("bad escape") }
            }
            index += 1
        }
        throw fail("unterminated string")
    }

    mutating func readString() throws(JSONError) -> String {
        let start = index
        try skipString()
        let body = UnsafeBufferPointer(rebasing: bytes[(start + 1)..<(index - 1)])
        guard body.contains(UInt8(ascii: "\\")) else { return String(decoding: body, as: UTF8.self) }
        return try unescape(body)
    }

    private func unescape(_ body: UnsafeBufferPointer<UInt8>) throws(JSONError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(body.count)
        var i = 0
        func hex4(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 { v = v << 4 | UInt32(hexValue(body[at + k])) }
            return v
        }
        while i < body.count {
            let b = body[i]
            guard b == UInt8(ascii: "\\") else { out.append(b); i += 1; continue }
            let e = body[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar = hex4(i)
                i += 4
                if (0xD800..<0xDC00).contains(scalar), i + 6 <= body.count,
                    body[i] == UInt8(ascii: "\\"), body[i + 1] == UInt8(ascii: "u")
                {
                    let low = hex4(i + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                let s = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(s)).utf8))
            default: out.append(e)  // \" \\ \/
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

@inline(__always) private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
// Internal: RubyJSONCheck reads \u escapes with them too.
@inline(__always) func isHex(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x66) }
@inline(__always) func hexValue(_ b: UInt8) -> UInt8 { isDigit(b) ? b - 0x30 : (b | 0x20) - 0x61 + 10 }

/// Writes JSON text for values Courier adds to a payload.
public enum JSONWriter {
    /// A JSON string literal, escaped as Ruby's JSON generator does.
    public static func string(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// Appends `bytes` (UTF-8) as a JSON string literal: the same text as
    /// `string(String(decoding: bytes, as: UTF8.self))`, escaped byte by byte
    /// without a String in between when they are ASCII (a job payload nearly
    /// always is; the stream body is built from them on every delivery).
    public static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        let start = out.count
        out.reserveCapacity(start + bytes.count + bytes.count / 8 + 2)
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0x08: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "f"))
            case 0..<0x20:
                out.append(contentsOf: "\\u00".utf8)
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0xF)])
            case 0x80...:
                // Not ASCII: the String path, which also turns invalid UTF-8 into U+FFFD as before.
                out.removeSubrange(start...)
                out.append(contentsOf: string(String(decoding: bytes, as: UTF8.self)).utf8)
                return
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A float that always carries a decimal point, as Sidekiq 8 readers need
    /// to tell seconds (Float) from milliseconds (Integer).
    public static func float(_ d: Double) -> String {
        let text = "\(d)"
        return text.contains(".") || text.contains("e") ? text : text + ".0"
    }

    /// A JSON array of string literals, e.g. the lines inside `error_backtrace` or the `queues` of the process info.
    public static func array(_ items: [String]) -> String { "[" + items.map(string).joined(separator: ",") + "]" }

}
