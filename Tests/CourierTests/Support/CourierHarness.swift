// Test support: couriers in this process and as child processes.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import Ops
import RedisAdapters
import ExecutorClient
import Foundation
import RedisClient
import SidekiqModel

/// Builds a configuration for a test courier.
func testConfiguration(
    redis: RedisServer, executorURL: String, queues: [String] = ["default"], concurrency: Int = 10,
    namespace: String? = nil, limits: [String: Int] = [:]
) throws -> CourierConfiguration {
    let plan = try QueuePlan(queues.map(QueueSpec.parse)).withLimits(limits)
    var configuration = CourierConfiguration(
        redis: redis.endpoint, plan: plan,
        executor: HTTPExecutorConfiguration(baseURL: executorURL, jobTimeout: .seconds(30)))
    configuration.concurrency = concurrency
    configuration.concurrencyIsExplicit = true  // a test's concurrency is what it asserts on, as `-c` is
    configuration.namespace = namespace
    configuration.opsPort = 0
    configuration.opsBind = "127.0.0.1"
    configuration.shutdownTimeout = .seconds(5)
    return configuration
}

/// A courier running in this test process.
final class RunningCourier: Sendable {
    let courier: Courier
    private let task: Task<Void, any Error>

    init(_ configuration: CourierConfiguration) throws {
        courier = try Courier(configuration: configuration, logger: testLogger())
        let courier = self.courier
        task = Task { try await courier.run() }
    }

    /// SIGTERM's path: stop and wait for `run` to return.
    func stop() async throws {
        courier.stop()
        try await task.value
    }
}

/// A `courier` executable running as a child process (for kill -9 and several instances).
final class CourierProcess: Sendable {
    let child: ChildProcess
    let output: URL

    init(arguments: [String], environment: [String: String] = [:]) throws {
        let binary = ProcessInfo.processInfo.environment["COURIER_BIN"] ?? packageRoot().appendingPathComponent(".build/debug/courier").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw TestFailure("no courier binary at \(binary); run swift build first") }
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        output = FileManager.default.temporaryDirectory.appendingPathComponent("courier-\(UUID().uuidString.prefix(8)).log")
        child = try ChildProcess(binary, arguments, environment: env, stdout: output.path, stderr: output.path)
    }

    var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    func kill9() {
        child.signal(SIGKILL)
        child.wait()
    }

    /// SIGTERM, then the exit code.
    func terminate() -> Int32 {
        child.signal(SIGTERM)
        return child.wait()
    }

    func waitForExit() -> Int32 { child.wait() }

    deinit { try? FileManager.default.removeItem(at: output) }
}

func packageRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}
