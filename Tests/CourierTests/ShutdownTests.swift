import CourierService
import ExecutorClient
import ExecutorProtocol
import Foundation
@testable import JobDispatch
import MiniHTTP
@testable import Ops
import RedisAdapters
import RedisClient
import SidekiqModel
import Synchronization
import XCTest

// Nothing outlives shutdown: the HTTP client completes every transfer and its
// thread ends, the exhausted hooks' waiting retries are cancelled and awaited,
// and the queue watchers' CLIENT UNBLOCKs are sent by a task of their own `run`.
final class ShutdownTests: XCTestCase {
    /// Threads of this process with this name (`/proc/self/task/*/comm`).
    private func threads(named name: String) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8))?.hasPrefix(name) == true }.count
    }

    private func openDescriptors() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).count }

    private func job(_ jid: String) -> ExecutionRequest {
        ExecutionRequest(
            path: "/v1/jobs", body: Array(#"{"class":"SlowJob","args":[],"jid":"\#(jid)"}"#.utf8), jid: jid, queue: "default", attempt: 1)
    }

    func testShutdownCompletesEveryTransferOnceAndEndsTheThread() async throws {
        let server = try RecordingExecutor(behaviour: slowOK(ms: 3000))
        defer { server.stop() }
        let threadsBefore = threads(named: "courier-http")
        let descriptorsBefore = openDescriptors()
        let results = Mutex<[String: [HTTPResult]]>([:])
        let jids = (1...6).map { "slow\($0)" }
        do {
            // Two connections: two transfers reach the executor, the others wait inside curl for one.
            let executor = HTTPExecutor(configuration: HTTPExecutorConfiguration(baseURL: server.url, maxConnections: 2))
            try await waitUntilAsync("the HTTP thread started", timeout: 5) { self.threads(named: "courier-http") == threadsBefore + 1 }
            for jid in jids.prefix(4) {
                executor.post(job(jid)) { result in results.withLock { $0[jid, default: []].append(result) } }
            }
            try await waitUntilAsync("two transfers at the executor", timeout: 10) { server.count == 2 }
            // Queued just before the shutdown: in the inbox or just handed to curl, never sent.
            for jid in jids.suffix(2) {
                executor.post(job(jid)) { result in results.withLock { $0[jid, default: []].append(result) } }
            }
            await executor.shutdown()

            let arrived = Set(server.received.compactMap { r in r.headers.first { $0.0.lowercased() == "courier-jid" }?.1 })
            XCTAssertEqual(arrived.count, 2)
            let seen = results.withLock { $0 }
            XCTAssertEqual(Set(seen.keys), Set(jids), "every completion ran by the time shutdown returned")
            for jid in jids {
                XCTAssertEqual(seen[jid]?.count, 1, "\(jid): completed exactly once")
                guard case let .transportError(reason, sent, timedOut)? = seen[jid]?.first else {
                    XCTFail("\(jid): \(String(describing: seen[jid]))")
                    continue
                }
                XCTAssertEqual(reason, "cancelled at shutdown")
                XCTAssertEqual(sent, arrived.contains(jid), "\(jid): sent is whether the request had left")
                XCTAssertFalse(timedOut)
            }

            // Afterwards a job completes at once, as executor-unavailable (the dispatcher requeues it).
            let late = Mutex<[ExecutionOutcome]>([])
            executor.submit(job("late")) { outcome in late.withLock { $0.append(outcome) } }
            let lateOutcomes = late.withLock { $0 }
            XCTAssertEqual(lateOutcomes.count, 1)
            if case let .executorUnavailable(reason, _, mayHaveRun)? = lateOutcomes.first {
                XCTAssertTrue(reason.contains("cancelled at shutdown"), reason)
                XCTAssertFalse(mayHaveRun)
            } else {
                XCTFail("late submit: \(lateOutcomes)")
            }
            await executor.shutdown()  // a second call returns at once
            XCTAssertEqual(results.withLock { $0.values.map(\.count).reduce(0, +) }, jids.count, "nothing completed twice")
        }
        try await waitUntilAsync("the HTTP thread ended", timeout: 5) { self.threads(named: "courier-http") == threadsBefore }
        // The executor's pipe and curl's connections are closed (the server closes its side once its 3 s answer is written).
        try await waitUntilAsync("descriptors back to \(descriptorsBefore)", timeout: 15) { self.openDescriptors() <= descriptorsBefore }
    }

    /// A courier whose ops port is taken fails to start, and leaves no HTTP thread behind
    /// (the executor's loop had started before the port was bound).
    func testAFailedStartEndsTheExecutorThread() async throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let taken = try MiniHTTPServer(port: 0) { _ in .json(200, "{}") }
        defer { taken.stop() }
        var configuration = try testConfiguration(redis: redis, executorURL: "http://127.0.0.1:9")
        configuration.opsPort = taken.port
        let threadsBefore = threads(named: "courier-http")
        XCTAssertThrowsError(try Courier(configuration: configuration, logger: testLogger()))
        try await waitUntilAsync("the HTTP thread ended", timeout: 5) { self.threads(named: "courier-http") == threadsBefore }
    }

    func testStoppingTheHooksCancelsAndAwaitsTheirWaitingRetries() async throws {
        let executor = RefusingExecutor()
        // The first retry would come after 60 s: stop must not wait for it.
        let hooks = ExhaustedHooks(executor: executor, logger: testLogger(.critical), metrics: CourierMetrics(), firstDelay: .seconds(60))
        for n in 1...3 { hooks.call(ExecutionRequest(path: "/v1/jobs/exhausted", body: [], jid: "dead\(n)", queue: "default", attempt: 1)) }
        XCTAssertEqual(executor.posts, 3)
        XCTAssertEqual(hooks.outstanding, 3)
        let started = ContinuousClock.now
        await hooks.stop()
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        XCTAssertEqual(hooks.outstanding, 3, "calls dropped at exit stay counted for the dispatcher's line")
        XCTAssertEqual(executor.posts, 3, "no attempt after stop")

        // A call after stop is tried once and given up, without a wait.
        hooks.call(ExecutionRequest(path: "/v1/jobs/exhausted", body: [], jid: "dead4", queue: "default", attempt: 1))
        XCTAssertEqual(executor.posts, 4)
        XCTAssertEqual(hooks.outstanding, 3)
    }

    func testHookRetriesStillFollowTheirSchedule() async throws {
        let executor = RefusingExecutor(refusals: 2)
        let hooks = ExhaustedHooks(executor: executor, logger: testLogger(.critical), metrics: CourierMetrics(), firstDelay: .milliseconds(20))
        let started = ContinuousClock.now
        hooks.call(ExecutionRequest(path: "/v1/jobs/exhausted", body: [], jid: "dead", queue: "default", attempt: 1))
        try await waitUntilAsync("the hook ran on its third attempt", timeout: 10) { hooks.outstanding == 0 }
        XCTAssertEqual(executor.posts, 3)
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(60), "20 ms, then 40 ms")
        await hooks.stop()
    }

    func testWatchersUnblockFromTheirOwnRunAndEndWithIt() async throws {
        let redis = try RedisServer()
        let logger = testLogger()
        let control = RedisWorker(name: "control", endpoint: redis.endpoint, logger: logger)
        // A block far longer than the test waits: only CLIENT UNBLOCK gets the watcher out early.
        let watchers = QueueWatchers(
            queues: ["default"], keys: SidekiqKeys(namespace: nil), identity: "test-shutdown", control: control,
            blockSeconds: 30
        ) { RedisWorker(name: $0, endpoint: redis.endpoint, logger: logger) }
        let run = Task { await watchers.run(logger: logger) }
        watchers.arm("default", .look)
        try await waitForBlockedClients(redis, 1)
        watchers.disarm(claimsOnly: false)
        try await waitForBlockedClients(redis, 0, timeout: 5)
        try await waitUntilAsync("the watcher is out of Redis", timeout: 5) { watchers.isDisarmed }

        // The unblocker is one of run's tasks: cancelling run ends it too, at once.
        let started = ContinuousClock.now
        run.cancel()
        await run.value
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
    }
}

/// Answers every POST at once as a request that never left (so the hooks retry it),
/// `refusals` times, then 200.
private final class RefusingExecutor: JobExecutor {
    private let calls = Atomic<Int>(0)
    private let refusals: Int

    init(refusals: Int = .max) { self.refusals = refusals }

    var posts: Int { calls.load(ordering: .relaxed) }

    func post(_ request: ExecutionRequest, completion: @escaping @Sendable (HTTPResult) -> Void) {
        let n = calls.add(1, ordering: .relaxed).newValue
        completion(
            n > refusals
                ? .response(status: 200, body: [], retryAfter: nil)
                : .transportError(reason: "Couldn't connect to server", sent: false, timedOut: false))
    }

    func submit(_ request: ExecutionRequest, completion: @escaping @Sendable (ExecutionOutcome) -> Void) { fatalError("not used") }
    func submitBatch(_ requests: [ExecutionRequest], completion: @escaping @Sendable ([ExecutionOutcome]) -> Void) { fatalError("not used") }
    func get(_ path: String, timeout: Duration, completion: @escaping @Sendable (HTTPResult) -> Void) { fatalError("not used") }
}

/// The log writer thread: lines from many threads all arrive, each thread's in
/// order, an info line within its window and an urgent one at once.
final class LogSinkTests: XCTestCase {
    /// Reads from `fd` until `done` holds for what was read, or `timeout` passes.
    private func read(_ fd: Int32, timeout: Duration, until done: (String) -> Bool) -> String {
        var text: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while !done(String(decoding: text, as: UTF8.self)), ContinuousClock.now < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n > 0 { text += chunk[0..<n] }
        }
        return String(decoding: text, as: UTF8.self)
    }

    func testLinesFromManyThreadsArriveInOrderAndUrgentOnesAtOnce() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        let sink = LogSink(fd: fds[1])
        @Sendable func log(_ text: String, urgent: Bool = false) {
            Array((text + "\n").utf8).withUnsafeBytes { sink.write($0, urgent: urgent) }
        }

        let started = ContinuousClock.now
        log("first")
        XCTAssertEqual(read(fds[0], timeout: .seconds(5)) { $0.hasSuffix("first\n") }, "first\n")
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2), "an info line waits about 20 ms, not for more lines")

        let threads = 4, lines = 500
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<lines { log("t\(t) \(i)") }
        }
        log("urgent", urgent: true)
        let text = read(fds[0], timeout: .seconds(10)) { $0.hasSuffix("urgent\n") }
        XCTAssertTrue(text.hasSuffix("urgent\n"), "the urgent line comes after everything queued before it")
        let received = text.split(separator: "\n").dropLast()
        XCTAssertEqual(received.count, threads * lines)
        for t in 0..<threads {
            let mine = received.filter { $0.hasPrefix("t\(t) ") }.map { Int($0.split(separator: " ")[1])! }
            XCTAssertEqual(mine, Array(0..<lines), "thread \(t)'s lines in order")
        }
    }
}
