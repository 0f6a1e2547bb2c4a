// The ops endpoints over real HTTP: with a courier behind them (Redis and
// Sidekiq's client), alone within MiniHTTP's limits, and the request parser
// on bytes.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import MiniHTTP
import Ops
import RedisAdapters
import Foundation
import Glibc
import XCTest

/// `/health`, `/ready` and `/metrics` on the ops port, read over real HTTP.
final class OpsEndpointsTests: XCTestCase {
    func testHealthReadinessAndJobMetrics() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor()
        let running = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url))
        let port = try XCTUnwrap(running.courier.opsPort)
        try await waitUntilAsync("ready", timeout: 5) { try httpGet(port: port, path: "/ready").status == 200 }
        XCTAssertEqual(try httpGet(port: port, path: "/health").status, 200)

        _ = try sidekiqRuby("Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (1..7).map { |i| [i] })", redisURL: redis.url)
        try await waitUntilAsync("7 jobs delivered", timeout: 10) { executor.count == 7 }
        try await waitUntilAsync("7 jobs counted", timeout: 5) {
            try httpGet(port: port, path: "/metrics").body.contains(
                #"courier_jobs_total{queue="default",class="NoopJob",outcome="done",tenant="none"} 7"#)
        }
        let metrics = try httpGet(port: port, path: "/metrics").body
        XCTAssertTrue(metrics.contains(#"courier_job_duration_seconds_count{queue="default",tenant="none"} 7"#), metrics)
        XCTAssertTrue(metrics.contains(#"courier_job_duration_seconds_bucket{queue="default",tenant="none",le="+Inf"} 7"#), metrics)
        XCTAssertTrue(metrics.contains(#"courier_job_latency_seconds_count{queue="default",tenant="none"} 7"#), metrics)
        XCTAssertTrue(metrics.contains("courier_concurrency_limit 10.0"), metrics)
        XCTAssertTrue(metrics.contains("# TYPE courier_jobs_total counter"))

        // Quiet: alive, but no longer ready for work.
        running.courier.quiet()
        try await waitUntilAsync("not ready once quiet", timeout: 5) { try httpGet(port: port, path: "/ready").status == 503 }
        XCTAssertEqual(try httpGet(port: port, path: "/health").status, 200)
        try await running.stop()
    }
}

/// One GET over a fresh connection: (status, body).
func httpGet(port: Int, path: String) throws -> (status: Int, body: String) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw TestFailure("connect to \(port): \(errno)") }
    var request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    guard write(fd, &request, request.count) == request.count else { throw TestFailure("write failed") }
    var response: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &chunk, chunk.count)
        if n <= 0 { break }
        response.append(contentsOf: chunk[0..<n])
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n").first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
        throw TestFailure("no HTTP answer from port \(port): \(text.prefix(100))")
    }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
}

/// The ops server without a courier behind it: its endpoints, and the limits
/// MiniHTTP holds every client to (connections, time, sizes, shape).
final class OpsServerLimitsTests: XCTestCase {
    private func opsServer(limits: MiniHTTPServer.Limits = .ops) throws -> OpsServer {
        let metrics = CourierMetrics()
        metrics.jobFinished(queue: "default", jobClass: "NoopJob", outcome: "done", tenant: nil, seconds: 0.01, latency: nil)
        return try OpsServer(host: "127.0.0.1", port: 0, metrics: metrics, limits: limits) { (true, "ok") }
    }

    func testEndpointsAnswer() throws {
        let ops = try opsServer()
        defer { ops.stop() }
        XCTAssertEqual(try httpGet(port: ops.port, path: "/health").status, 200)
        XCTAssertEqual(try httpGet(port: ops.port, path: "/ready").body, #"{"status":"ready","reason":"ok"}"#)
        let metrics = try httpGet(port: ops.port, path: "/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.body.contains(#"courier_jobs_total{queue="default",class="NoopJob",outcome="done",tenant="none"} 1"#), metrics.body)
        XCTAssertEqual(try httpGet(port: ops.port, path: "/nope").status, 404)
        // Keep-alive: two requests on one connection; HEAD has the length but no body.
        let client = try RawClient(port: ops.port)
        try client.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\nHEAD /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let answers = client.readToEnd()
        XCTAssertEqual(answers.components(separatedBy: "HTTP/1.1 200 OK").count, 3, answers)
        XCTAssertTrue(answers.hasSuffix("Connection: close\r\n\r\n"), answers)  // HEAD: no body after the head
        XCTAssertTrue(answers.contains("Content-Length: 32\r\n"), answers)
    }

    func testConnectionsOverTheCapAreRefused() throws {
        let ops = try opsServer()
        defer { ops.stop() }
        // 16 idle connections hold every slot (each served once, so it is surely counted).
        var held: [RawClient] = []
        for _ in 0..<16 {
            let client = try RawClient(port: ops.port)
            try client.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertTrue(client.readAnswer().hasPrefix("HTTP/1.1 200"))
            held.append(client)
        }
        let extra = try RawClient(port: ops.port)
        let refused = extra.readToEnd()
        XCTAssertTrue(refused.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), refused)
        XCTAssertTrue(refused.hasSuffix("too many connections\n"), refused)
        // Freed slots serve again.
        held.removeAll()
        try waitUntil("a slot free", timeout: 5) { (try? httpGet(port: ops.port, path: "/health").status) == 200 }
    }

    func testSilentAndDribblingClientsAreClosed() throws {
        let limits = MiniHTTPServer.Limits(maxConnections: 4, requestTimeout: .milliseconds(600), idleTimeout: .milliseconds(600))
        let ops = try opsServer(limits: limits)
        defer { ops.stop() }
        let clock = ContinuousClock()

        // Sends nothing: closed, without an answer, once idle for the timeout.
        let silent = try RawClient(port: ops.port)
        var started = clock.now
        XCTAssertEqual(silent.readToEnd(), "")
        var took = clock.now - started
        XCTAssertTrue(took >= .milliseconds(500) && took < .seconds(3), "\(took)")

        // One byte every 150 ms: each read is quick, the request never whole: 408 at its deadline.
        let dribbler = try RawClient(port: ops.port)
        started = clock.now
        var answer = ""
        for byte in "GET /health HTTP/1.1\r\nHost: x\r\n".utf8 {
            guard (try? dribbler.send([byte])) != nil else { break }
            usleep(150_000)
            if dribbler.hasBytes { answer = dribbler.readToEnd(); break }
            if clock.now - started > .seconds(5) { break }
        }
        took = clock.now - started
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), answer)
        XCTAssertTrue(took >= .milliseconds(500) && took < .seconds(3), "\(took)")

        // Neither held a slot afterwards.
        try waitUntil("slots free", timeout: 3) { (try? httpGet(port: ops.port, path: "/health").status) == 200 }
    }

    func testOversizeHeadIs431() throws {
        let ops = try opsServer()
        defer { ops.stop() }
        let client = try RawClient(port: ops.port)
        try client.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + String(repeating: "a", count: 17 * 1024) + "\r\n\r\n")
        let answer = client.readToEnd()
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer)
    }

    func testOversizeBodyIs413BeforeItIsSent() throws {
        let ops = try opsServer()
        defer { ops.stop() }
        let client = try RawClient(port: ops.port)
        try client.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: \(2 << 20)\r\n\r\n")
        let answer = client.readToEnd()
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 413 Content Too Large\r\n"), answer)
    }

    func testGarbageIs400() throws {
        let ops = try opsServer()
        defer { ops.stop() }
        for garbage in ["HELLO\r\n\r\n", "GET /health\r\n\r\n", "GET /health HTTP/1.1\r\nno colon here\r\n\r\n", "\u{16}\u{03}\u{01}\u{02}\u{00}"] {
            let client = try RawClient(port: ops.port)
            try client.send(garbage)
            let answer = client.readToEnd()
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(garbage.debugDescription): \(answer)")
        }
        XCTAssertEqual(try httpGet(port: ops.port, path: "/health").status, 200)
    }
}

/// `HTTPRequestParser` on bytes alone.
final class HTTPRequestParserTests: XCTestCase {
    private func parse(_ text: String, limits: HTTPRequestLimits = HTTPRequestLimits()) -> HTTPParseResult {
        HTTPRequestParser.parse(Array(text.utf8), limits: limits)
    }

    private func status(_ text: String, limits: HTTPRequestLimits = HTTPRequestLimits()) -> Int? {
        if case .rejected(let error) = parse(text, limits: limits) { return error.status }
        return nil
    }

    func testRequestsAndWhatFollowsThem() throws {
        let text = "\r\nPOST /v1/jobs?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Empty:\r\nX-Pad: \t v w \t\r\n\r\nhelloGET / HTTP/1.0\r\n\r\n"
        guard case .request(let request, let consumed) = parse(text) else { return XCTFail("\(parse(text))") }
        XCTAssertEqual(request.method, "POST")
        XCTAssertEqual(request.path, "/v1/jobs?x=1")
        XCTAssertEqual(request.version, "HTTP/1.1")
        XCTAssertEqual(request.header("content-length"), "5")
        XCTAssertEqual(request.header("X-Empty"), "")
        XCTAssertEqual(request.header("x-pad"), "v w")
        XCTAssertEqual(request.body, Array("hello".utf8))
        XCTAssertTrue(request.keepAlive)
        let rest = Array(Array(text.utf8)[consumed...])
        guard case .request(let next, rest.count) = HTTPRequestParser.parse(rest) else { return XCTFail("second request") }
        XCTAssertEqual(next.version, "HTTP/1.0")
        XCTAssertFalse(next.keepAlive)
        XCTAssertTrue(HTTPRequest(method: "GET", path: "/", version: "HTTP/1.0", headers: [("Connection", "Keep-Alive")]).keepAlive)
        XCTAssertFalse(HTTPRequest(method: "GET", path: "/", headers: [("Connection", "foo, close")]).keepAlive)
    }

    func testIncompleteRequestsAskForMore() {
        guard case .needMore(let head) = parse("GET / HTTP/1.1\r\nHost: a\r\n") else { return XCTFail() }
        XCTAssertEqual(head, 26)
        // The head is whole: wait for the body's last byte, without parsing again before.
        guard case .needMore(let body) = parse("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc") else { return XCTFail() }
        XCTAssertEqual(body, 38 + 10)
        guard case .needMore = parse("") else { return XCTFail() }
        guard case .needMore = parse("GET /a/b?c HTTP/1.") else { return XCTFail() }
    }

    func testRefusals() {
        XCTAssertEqual(status("GET / HTTP/1.1\r\n" + "X: " + String(repeating: "a", count: 100) + "\r\n\r\n", limits: .init(maxHeadBytes: 64)), 431)
        XCTAssertEqual(status("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 100), limits: .init(maxHeadBytes: 64)), 431)  // never ends
        XCTAssertEqual(status("GET /" + String(repeating: "a", count: 100), limits: .init(maxHeadBytes: 64)), 431)
        XCTAssertEqual(status("POST / HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", limits: .init(maxBodyBytes: 1024)), 413)
        XCTAssertEqual(status("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"), 413)
        XCTAssertNil(status("POST / HTTP/1.1\r\nContent-Length: 1024\r\n\r\n", limits: .init(maxBodyBytes: 1024)))
        XCTAssertEqual(status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 501)
        XCTAssertEqual(status("GET / HTTP/2.0\r\n\r\n"), 505)
        for bad in [
            "GET / HTTP/1.1 extra\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET / HTTX/1.1\r\n\r\n",
            "GET /\u{7F} HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\nHost: a\r\n\r\n", " GET / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\n: a\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\u{01}b\r\n\r\n", "GET / HTTP/1.1\r\nX: a\nb\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        ] {
            XCTAssertEqual(status(bad), 400, bad.debugDescription)
        }
        // Refused from its first bytes, without waiting for a line end.
        XCTAssertEqual(status("\u{16}\u{03}\u{01}"), 400)
        XCTAssertEqual(status("GET / HTTP/1.1 x"), 400)
        XCTAssertEqual(status("GET /\r!"), 400)
    }
}

/// A client socket for the limits tests: raw bytes out, whatever comes back in.
private final class RawClient {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw TestFailure("connect to \(port): \(errno)") }
    }

    deinit { close(fd) }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send: \(errno)") }
            offset += n
        }
    }

    /// Whether an answer (or the end) is waiting to be read.
    var hasBytes: Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0
    }

    /// Everything until the server closes (or 10 s pass).
    func readToEnd() -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// One answer of a keep-alive connection: its head and Content-Length bytes.
    func readAnswer() -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1 {
            bytes.append(byte)
            guard bytes.count >= 4, bytes.suffix(4) == [13, 10, 13, 10] else { continue }
            let head = String(decoding: bytes, as: UTF8.self)
            let length =
                head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            var body = [UInt8](repeating: 0, count: length)
            var got = 0
            while got < length {
                let n = body.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, length - got) }
                if n <= 0 { break }
                got += n
            }
            return head + String(decoding: body[0..<got], as: UTF8.self)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
