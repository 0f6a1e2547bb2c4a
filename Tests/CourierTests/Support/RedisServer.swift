// Test support: a real redis-server per test, and waiting for conditions.
import Foundation
import RedisClient
import Logging

/// A real `redis-server` on a free port, in a temporary directory, for one test.
/// @unchecked: `process` changes only in `start`/`stop` (a restart), which a test calls
/// from its own task between the steps that use the server; other tasks only read `port` and `url`.
final class RedisServer: @unchecked Sendable {
    let port: Int
    let directory: URL
    private var process: ChildProcess?
    private let appendOnly: Bool
    /// `requirepass`, when the server should demand AUTH.
    let password: String?

    init(appendOnly: Bool = false, password: String? = nil) throws {
        self.password = password
        port = try freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("courier-redis-\(port)-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.appendOnly = appendOnly
        try start()
    }

    var url: String { password.map { "redis://:\($0)@127.0.0.1:\(port)/0" } ?? "redis://127.0.0.1:\(port)/0" }
    var endpoint: RedisEndpoint { try! RedisEndpoint(url: url) }

    func start() throws {
        process = try ChildProcess(
            try which("redis-server"),
            [
                "--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory.path, "--save", "",
                "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "always", "--logfile", "redis.log",
            ] + (password.map { ["--requirepass", $0] } ?? []))
        try waitUntil("redis-server on \(port) answers PING", timeout: 10) { (try? self.command(["PING"])) != nil }
    }

    /// SIGTERM (Redis writes its AOF and exits), then waits for the exit.
    func stop() {
        guard let p = process else { return }
        p.signal(SIGTERM)
        p.wait()
        process = nil
    }

    func restart() throws {
        stop()
        try start()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// One command on a fresh connection.
    @discardableResult
    func command(_ args: [String]) throws -> RedisReply {
        let connection = try RedisConnection(endpoint: endpoint, timeouts: RedisTimeouts(connect: .seconds(1), command: .seconds(5)))
        return try connection.command(args).orThrow(args.joined(separator: " "))
    }

    func llen(_ key: String) throws -> Int { try command(["LLEN", key]).int ?? 0 }
    func lrange(_ key: String) throws -> [[UInt8]] { (try command(["LRANGE", key, "0", "-1"]).array ?? []).compactMap(\.bytes) }
}

func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

func which(_ name: String) throws -> String {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
        return "\(dir)/\(name)"
    }
    throw TestFailure("\(name) not found on PATH")
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 20 ms until it holds or `timeout` seconds pass.
func waitUntil(_ what: String, timeout: Double, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(20_000)
    }
    throw TestFailure("timed out after \(timeout) s waiting for: \(what)")
}

/// `state`, when given, describes what the test waits on at a timeout (what CI prints is all there is to go on).
func waitUntilAsync(
    _ what: String, timeout: Double, state: (() async throws -> String)? = nil, _ condition: () async throws -> Bool
) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    var described = ""
    if let state { described = "; state: " + (try await state()) }
    throw TestFailure("timed out after \(timeout) s waiting for: \(what)\(described)")
}

/// Waits until `count` clients are blocked in Redis (a courier's queue watchers inside BLMOVE),
/// instead of sleeping for "long enough" after start-up or quiet.
func waitForBlockedClients(_ redis: RedisServer, _ count: Int, timeout: Double = 10) async throws {
    try await waitUntilAsync("\(count) clients blocked in Redis", timeout: timeout) {
        let info = try redis.command(["INFO", "clients"]).string ?? ""
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("blocked_clients:") }
        return line.flatMap { Int($0.dropFirst("blocked_clients:".count)) } == count
    }
}

/// A logger for in-process couriers in tests: warnings and worse only.
func testLogger(_ level: Logger.Level = .warning) -> Logger {
    var logger = Logger(label: "courier-test") { _ in StreamLogHandler.standardError(label: "courier-test") }
    logger.logLevel = level
    return logger
}
