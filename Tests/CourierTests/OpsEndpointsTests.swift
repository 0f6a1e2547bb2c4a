import Config
import CourierService
import ExecutorProtocol
import JobDispatch
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
            try httpGet(port: port, path: "/metrics").body.contains(#"courier_jobs_total{queue="default",class="NoopJob",outcome="done"} 7"#)
        }
        let metrics = try httpGet(port: port, path: "/metrics").body
        XCTAssertTrue(metrics.contains(#"courier_job_duration_seconds_count{queue="default",class="NoopJob"} 7"#), metrics)
        XCTAssertTrue(metrics.contains(#"courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="+Inf"} 7"#), metrics)
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
