// A small blocking HTTP/1.1 server: courier's ops port (/health, /ready,
// /metrics, through Ops' `OpsServer`) and the test executors.
//
// Hand-written on purpose. A maintained server (Hummingbird on SwiftNIO)
// would add 3–4 minutes to every CI build and megabytes of resident memory,
// against a budget of 25 MB RSS for courier at -c 100, to serve three GETs.
// Being small, it bounds everything a client could make it hold (`Limits`):
//   * connections: at most `maxConnections` at once, a thread each; one more
//     is answered 503 by the accepting thread and closed;
//   * time: a request must arrive whole within `requestTimeout` of its first
//     byte (else 408 and close), an idle keep-alive connection is closed after
//     `idleTimeout`, and a send blocked for `requestTimeout` ends the
//     connection: a client that sends nothing, dribbles or never reads is cut;
//   * size: the request line and headers (431 over `maxHeadBytes`) and the
//     body (413 over `maxBodyBytes`, refused before it is read);
//   * shape: what `HTTPRequestParser` refuses (400, 501, 505).
// Keep-alive follows HTTP/1.1 (HTTP/1.0 only with `Connection: keep-alive`);
// a `HEAD` is answered without the body. Not a general web server: no TLS,
// no chunked bodies, no pipelining beyond answering requests in order.
import CourierSupport
import Glibc
import Synchronization

/// An HTTP response to send.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Sent as given; Content-Length (and Connection: close when closing) are added.
    public var headers: [(String, String)]
    public var body: [UInt8]

    /// A response of `status` with these headers and body.
    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A text body (UTF-8) with its Content-Type.
    public static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", contentType)], body: Array(text.utf8))
    }

    /// A JSON body, given as text.
    public static func json(_ status: Int, _ json: String) -> HTTPResponse {
        text(status, json, contentType: "application/json")
    }
}

/// The server could not be started (socket, address, bind or listen).
public struct MiniHTTPError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// A small blocking HTTP/1.1 server: one thread accepts, one thread serves
/// each connection (keep-alive), within `Limits`.
public final class MiniHTTPServer: Sendable {
    /// Answers one request; called on the connection's thread.
    public typealias Handler = @Sendable (HTTPRequest) -> HTTPResponse

    /// What one server lets its clients hold.
    public struct Limits: Sendable, Equatable {
        /// Connections served at once; one more is answered 503 and closed.
        public var maxConnections: Int
        /// From a request's first byte to its last, and the longest a send may block.
        public var requestTimeout: Duration
        /// How long a keep-alive connection may wait for its next request.
        public var idleTimeout: Duration
        /// Sizes of the head and the body.
        public var request: HTTPRequestLimits

        /// The defaults suit the test executors, which take courier's batches
        /// (up to 8 MiB by default) over as many connections as its `-c`.
        public init(
            maxConnections: Int = 256, requestTimeout: Duration = .seconds(5), idleTimeout: Duration = .seconds(60),
            maxHeadBytes: Int = 16 * 1024, maxBodyBytes: Int = 16 << 20
        ) {
            self.maxConnections = maxConnections
            self.requestTimeout = requestTimeout
            self.idleTimeout = idleTimeout
            self.request = HTTPRequestLimits(maxHeadBytes: maxHeadBytes, maxBodyBytes: maxBodyBytes)
        }

        /// The ops port: 16 connections, 5 s to send a request and 5 s idle, 16 KiB of head, 1 MiB of body.
        public static let ops = Limits(
            maxConnections: 16, requestTimeout: .seconds(5), idleTimeout: .seconds(5),
            maxHeadBytes: 16 * 1024, maxBodyBytes: 1 << 20)
    }

    /// The port bound (the one asked for, or a free one for 0).
    public let port: Int
    /// What this server lets its clients hold.
    public let limits: Limits
    private let listenFD: Int32
    private let stopped = Atomic<Bool>(false)
    private let active = Atomic<Int>(0)

    /// Binds `host:port` (port 0 picks a free one) and starts serving.
    public init(host: String = "127.0.0.1", port: Int = 0, limits: Limits = Limits(), handler: @escaping Handler) throws(MiniHTTPError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MiniHTTPError(description: "socket() failed: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw MiniHTTPError(description: "bad IPv4 address '\(host)'")
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 512) == 0 else {
            let code = errno
            close(fd)
            throw MiniHTTPError(description: "cannot listen on \(host):\(port): \(String(cString: strerror(code)))")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        self.listenFD = fd
        self.limits = limits
        startDedicatedThread(name: "http-accept") { [self] in acceptLoop(handler) }
    }

    /// Connections being served now.
    public var connections: Int { active.load(ordering: .relaxed) }

    /// Stops accepting; open connections end when their clients close them or time out.
    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(listenFD, Int32(SHUT_RDWR))
        close(listenFD)
    }

    private func acceptLoop(_ handler: @escaping Handler) {
        while !stopped.load(ordering: .relaxed) {
            let client = accept(listenFD, nil, nil)
            if client < 0 {
                let code = errno
                if stopped.load(ordering: .relaxed) || code == EBADF || code == EINVAL || code == ENOTSOCK { break }
                if code != EINTR && code != ECONNABORTED { usleep(10_000) }  // out of descriptors or memory: wait, do not spin
                continue
            }
            var one: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            // Taken only here, so the count never passes the cap.
            guard active.load(ordering: .relaxed) < limits.maxConnections else {
                Self.refuse(client)
                continue
            }
            active.add(1, ordering: .relaxed)
            var timeout = timeval(limits.requestTimeout)
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let limits = limits
            startDedicatedThread(name: "http-conn") { [self] in
                Self.serve(client, limits, handler)
                active.subtract(1, ordering: .relaxed)
            }
        }
    }

    /// Over the cap: 503 and close, without ever blocking the accepting thread.
    /// What the client sent already is read first, so the close does not reset
    /// the connection before the client reads the answer.
    private static func refuse(_ fd: Int32) {
        var scratch = [UInt8](repeating: 0, count: 4096)
        var reads = 0
        while reads < 4, recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT)) > 0 { reads += 1 }
        let bytes = encode(.text(503, "too many connections\n"), headOnly: false, close: true)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
        shutdown(fd, Int32(SHUT_WR))
        close(fd)
    }

    private static func serve(_ fd: Int32, _ limits: Limits, _ handler: Handler) {
        defer { close(fd) }
        var connection = Connection(fd: fd, limits: limits)
        while true {
            switch connection.nextRequest() {
            case .closed:
                return
            case .timedOut:
                _ = writeAll(fd, encode(.text(408, "request not received in time\n"), headOnly: false, close: true))
                return connection.lingeringClose()
            case .rejected(let error):
                _ = writeAll(fd, encode(.text(error.status, error.reason + "\n"), headOnly: false, close: true))
                return connection.lingeringClose()
            case .request(let request):
                let keepAlive = request.keepAlive
                guard writeAll(fd, encode(handler(request), headOnly: request.method == "HEAD", close: !keepAlive)), keepAlive else { return }
            }
        }
    }

    private static func encode(_ response: HTTPResponse, headOnly: Bool, close: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(response.status) \(reasonPhrase(response.status))\r\n"
        for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(response.body.count)\r\n"
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if !headOnly { bytes.append(contentsOf: response.body) }
        return bytes
    }

    /// Sends everything, or gives up when the peer is gone or the send timeout (SO_SNDTIMEO) passes.
    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return false }
            offset += n
        }
        return true
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }
}

/// The reading side of one connection: bytes from the socket, within the
/// limits' deadlines, handed to `HTTPRequestParser`.
private struct Connection {
    enum Next {
        case request(HTTPRequest)
        case rejected(HTTPRequestError)
        /// A request was started and not finished within `requestTimeout`.
        case timedOut
        /// The client closed, the connection failed, or it stayed idle for `idleTimeout`.
        case closed
    }

    let fd: Int32
    let limits: MiniHTTPServer.Limits
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 16 * 1024)

    init(fd: Int32, limits: MiniHTTPServer.Limits) {
        self.fd = fd
        self.limits = limits
    }

    mutating func nextRequest() -> Next {
        let clock = ContinuousClock()
        // Bytes left from the last read start the next request's clock at once.
        var deadline = buffer.isEmpty ? nil : clock.now + limits.requestTimeout
        var needed = 0
        while true {
            if buffer.count >= needed {
                switch HTTPRequestParser.parse(buffer, limits: limits.request) {
                case .request(let request, let consumed):
                    buffer.removeFirst(consumed)
                    return .request(request)
                case .rejected(let error):
                    return .rejected(error)
                case .needMore(let atLeast):
                    needed = atLeast
                }
            }
            let wait = deadline.map { $0 - clock.now } ?? limits.idleTimeout
            guard waitReadable(wait) else { return deadline == nil ? .closed : .timedOut }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return .closed }
            if deadline == nil { deadline = clock.now + limits.requestTimeout }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// After an error answer: stop sending, then read and drop what the client
    /// still sends (a refused body, say) for up to a second, so closing does
    /// not reset the connection before the client has read the answer.
    mutating func lingeringClose() {
        shutdown(fd, Int32(SHUT_WR))
        let clock = ContinuousClock()
        let until = clock.now + .seconds(1)
        var dropped = 0
        while dropped < limits.request.maxBodyBytes, waitReadable(until - clock.now) {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            dropped += n
        }
    }

    /// Waits until the socket has bytes (or an end) to read; false when `timeout` passes first.
    private func waitReadable(_ timeout: Duration) -> Bool {
        let clock = ContinuousClock()
        let until = clock.now + timeout
        while true {
            let left = until - clock.now
            guard left > .zero else { return false }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(clamping: max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            let ready = poll(&entry, 1, ms)
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
        }
    }
}

extension timeval {
    /// A socket timeout of `duration` (at least a millisecond: zero would mean none).
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let micros = Int(attoseconds / 1_000_000_000_000)
        self.init(tv_sec: Int(seconds), tv_usec: seconds == 0 && micros == 0 ? 1000 : micros)
    }
}
