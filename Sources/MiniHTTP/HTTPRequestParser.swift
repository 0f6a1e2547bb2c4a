// Reading one HTTP/1.1 request out of the bytes a connection has received so
// far: a pure function (no I/O, no clock), so the server's loop stays small
// and the parser can be fuzzed on its own (tests/faults/fuzz, FuzzHTTPRequest).
//
// What it accepts (RFC 9112, the subset courier's clients send):
//   request line  METHOD SP TARGET SP HTTP/1.0|HTTP/1.1 CRLF — a token, then
//                 visible ASCII; empty lines before it are skipped;
//   header lines  NAME ":" OWS VALUE OWS CRLF — a token name, a value without
//                 control characters (tab allowed); no folded lines;
//   body          exactly Content-Length bytes (none without the header);
//                 Transfer-Encoding is not supported.
// What it bounds: the head (request line and headers, with the blank line)
// to `maxHeadBytes` (431), the body to `maxBodyBytes` (413). A request line
// that cannot be valid is refused (400) as soon as its first bytes show it,
// without waiting for the rest.

/// A parsed HTTP/1.1 request.
public struct HTTPRequest: Sendable {
    /// `GET`, `POST`… as sent (methods are case-sensitive).
    public var method: String
    /// The request target as sent (path and query).
    public var path: String
    /// `HTTP/1.0` or `HTTP/1.1`.
    public var version: String
    /// Name and value of each header line, in order, values without surrounding spaces.
    public var headers: [(String, String)]
    /// Exactly Content-Length bytes.
    public var body: [UInt8]

    /// A request as the parser makes them (for tests and fuzzing).
    public init(method: String, path: String, version: String = "HTTP/1.1", headers: [(String, String)] = [], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// The first header of that name (case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.0.lowercased() == lower }?.1
    }

    /// Whether the connection stays open after the answer: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    public var keepAlive: Bool {
        let options = headers.filter { $0.0.lowercased() == "connection" }
            .flatMap { $0.1.split(separator: ",").map { $0.trimmingSpaces.lowercased() } }
        if options.contains("close") { return false }
        return version == "HTTP/1.1" || options.contains("keep-alive")
    }
}

/// Why a request is refused: answered with `status`, then the connection is closed.
public struct HTTPRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 400, 413, 431, 501 or 505.
    public let status: Int
    /// A short text for the answer's body.
    public let reason: String
    public var description: String { "\(status) \(reason)" }

    static func bad(_ reason: String) -> HTTPRequestError { HTTPRequestError(status: 400, reason: reason) }
}

/// How large a request may be.
public struct HTTPRequestLimits: Sendable, Equatable {
    /// Request line, headers and the blank line after them, in bytes.
    public var maxHeadBytes: Int
    /// The body (its Content-Length), in bytes.
    public var maxBodyBytes: Int

    /// 16 KiB of head and 1 MiB of body unless told otherwise.
    public init(maxHeadBytes: Int = 16 * 1024, maxBodyBytes: Int = 1 << 20) {
        self.maxHeadBytes = maxHeadBytes
        self.maxBodyBytes = maxBodyBytes
    }
}

/// What the bytes received so far hold.
public enum HTTPParseResult: Sendable {
    /// A whole request, made of the first `consumed` bytes; the rest belongs to the next one.
    case request(HTTPRequest, consumed: Int)
    /// Not a whole request yet: parse again once at least `atLeast` bytes have arrived.
    case needMore(atLeast: Int)
    /// Not a request this server takes: answer the error and close.
    case rejected(HTTPRequestError)
}

/// The request parser: bytes in, a request (or what is missing, or why not) out.
public enum HTTPRequestParser {
    /// Parses the request at the start of `bytes`.
    public static func parse(_ bytes: [UInt8], limits: HTTPRequestLimits = HTTPRequestLimits()) -> HTTPParseResult {
        bytes.withUnsafeBufferPointer { parse($0, limits: limits) }
    }

    private static func parse(_ b: UnsafeBufferPointer<UInt8>, limits: HTTPRequestLimits) -> HTTPParseResult {
        // Empty lines before the request line (RFC 9112 §2.2) count toward the head.
        var start = 0
        while start + 1 < b.count, b[start] == cr, b[start + 1] == lf { start += 2 }
        if start >= limits.maxHeadBytes { return .rejected(HTTPRequestError(status: 431, reason: "request head too large")) }

        guard let lineEnd = find(crlf, in: b, from: start) else {
            if let error = refusePartialRequestLine(b, from: start) { return .rejected(error) }
            return b.count >= limits.maxHeadBytes
                ? .rejected(HTTPRequestError(status: 431, reason: "request head too large"))
                : .needMore(atLeast: b.count + 1)
        }
        let requestLine: (method: String, target: String, version: String)
        switch parseRequestLine(b, start..<lineEnd) {
        case .success(let line): requestLine = line
        case .failure(let error): return .rejected(error)
        }

        // The head ends at the first empty line after the request line.
        let headEnd: Int  // index just past the blank line's CRLF
        if let blank = find(crlfcrlf, in: b, from: lineEnd) {
            headEnd = blank + 4
        } else {
            return b.count >= limits.maxHeadBytes
                ? .rejected(HTTPRequestError(status: 431, reason: "request head too large"))
                : .needMore(atLeast: b.count + 1)
        }
        if headEnd > limits.maxHeadBytes { return .rejected(HTTPRequestError(status: 431, reason: "request head too large")) }

        var headers: [(String, String)] = []
        var contentLength: Int?
        var lineStart = lineEnd + 2
        while lineStart < headEnd - 2 {
            let end = find(crlf, in: b, from: lineStart)!  // the head ends with CRLF CRLF
            let header: (String, String)
            switch parseHeader(b, lineStart..<end) {
            case .success(let h): header = h
            case .failure(let error): return .rejected(error)
            }
            switch header.0.lowercased() {
            case "content-length":
                switch parseLength(header.1, max: limits.maxBodyBytes) {
                case .success(let n):
                    if let previous = contentLength, previous != n { return .rejected(.bad("conflicting Content-Length headers")) }
                    contentLength = n
                case .failure(let error): return .rejected(error)
                }
            case "transfer-encoding":
                return .rejected(HTTPRequestError(status: 501, reason: "Transfer-Encoding is not supported; send Content-Length"))
            default: break
            }
            headers.append(header)
            lineStart = end + 2
        }

        let total = headEnd + (contentLength ?? 0)
        guard b.count >= total else { return .needMore(atLeast: total) }
        let request = HTTPRequest(
            method: requestLine.method, path: requestLine.target, version: requestLine.version,
            headers: headers, body: Array(b[headEnd..<total]))
        return .request(request, consumed: total)
    }

    // MARK: - Pieces

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), sp = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
    private static let crlf: [UInt8] = [13, 10]
    private static let crlfcrlf: [UInt8] = [13, 10, 13, 10]

    /// RFC 9110 `tchar`: the characters of a method or a header name.
    static func isToken(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// Visible ASCII: the characters of a request target.
    private static func isVisible(_ c: UInt8) -> Bool { c > 0x20 && c < 0x7F }

    /// A request line not yet ended by CRLF that no more bytes can make valid:
    /// a byte that belongs in none of its parts, or a third space.
    private static func refusePartialRequestLine(_ b: UnsafeBufferPointer<UInt8>, from start: Int) -> HTTPRequestError? {
        var spaces = 0
        for i in start..<b.count {
            let c = b[i]
            if c == sp {
                spaces += 1
                if spaces > 2 || i == start { return .bad("malformed request line") }
            } else if c == cr {
                if i + 1 < b.count { return .bad("malformed request line") }  // CR not followed by LF
            } else if !(spaces == 0 ? isToken(c) : isVisible(c)) {
                return .bad("malformed request line")
            }
        }
        return nil
    }

    private static func parseRequestLine(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>)
        -> Result<(method: String, target: String, version: String), HTTPRequestError>
    {
        let line = b[range]
        let parts = line.split(separator: sp, maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isToken), !parts[1].isEmpty, parts[1].allSatisfy(isVisible) else {
            return .failure(.bad("malformed request line"))
        }
        let v = Array(parts[2])
        let isHTTPVersion = v.count == 8 && v.starts(with: "HTTP/".utf8) && isDigit(v[5]) && v[6] == UInt8(ascii: ".") && isDigit(v[7])
        guard isHTTPVersion else { return .failure(.bad("malformed request line")) }
        guard v[5] == UInt8(ascii: "1"), v[7] == UInt8(ascii: "0") || v[7] == UInt8(ascii: "1") else {
            return .failure(HTTPRequestError(status: 505, reason: "HTTP version not supported"))
        }
        let version = String(decoding: v, as: UTF8.self)
        return .success((String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self), version))
    }

    private static func parseHeader(_ b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Result<(String, String), HTTPRequestError> {
        let line = b[range]
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
            line[line.startIndex..<colon].allSatisfy(isToken)
        else {
            return .failure(.bad(line.first == sp || line.first == tab ? "folded header line" : "malformed header line"))
        }
        var value = line[(colon + 1)...]
        while let first = value.first, first == sp || first == tab { value = value.dropFirst() }
        while let last = value.last, last == sp || last == tab { value = value.dropLast() }
        guard value.allSatisfy({ $0 == tab || ($0 >= 0x20 && $0 != 0x7F) }) else { return .failure(.bad("control character in a header value")) }
        return .success((String(decoding: line[line.startIndex..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    /// Content-Length: decimal digits only, at most `max`.
    private static func parseLength(_ text: String, max: Int) -> Result<Int, HTTPRequestError> {
        guard !text.isEmpty, text.utf8.allSatisfy(isDigit) else { return .failure(.bad("malformed Content-Length")) }
        var n = 0
        for c in text.utf8 {
            let (tens, overflow) = n.multipliedReportingOverflow(by: 10)
            let (next, carry) = tens.addingReportingOverflow(Int(c - UInt8(ascii: "0")))
            guard !overflow, !carry, next <= max else {
                return .failure(HTTPRequestError(status: 413, reason: "request body too large (over \(max) bytes)"))
            }
            n = next
        }
        return .success(n)
    }

    /// The first index of `needle` in `b` at or after `from`.
    private static func find(_ needle: [UInt8], in b: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard b.count >= needle.count, from <= b.count - needle.count else { return nil }
        var i = from
        let last = b.count - needle.count
        outer: while i <= last {
            if b[i] != needle[0] { i += 1; continue }
            for j in 1..<needle.count where b[i + j] != needle[j] { i += 1; continue outer }
            return i
        }
        return nil
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return s
    }
}
