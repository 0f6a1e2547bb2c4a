// ThreadExecutor, the dispatcher loop's thread: a task that prefers it and an
// actor on it run on the same one OS thread (so a round trip hops none), its
// timers fire there and wake WakeSignal's timed waits, and the thread ends
// when idle and comes back for the next job.
import CourierSupport
import Foundation
import Glibc
import Synchronization
import XCTest

/// The OS thread now (pthread_self as a number).
private func currentThread() -> UInt { UInt(pthread_self()) }

/// An actor whose calls run on the given executor's thread (as RedisWorker's do).
private actor Pinned {
    nonisolated let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    init(_ executor: ThreadExecutor) { self.executor = executor }
    func thread() -> UInt { currentThread() }
}

final class ThreadExecutorTests: XCTestCase {
    func testATaskThatPrefersItAndAnActorOnItShareOneThread() async {
        let executor = ThreadExecutor(name: "test-loop")
        let actor = Pinned(executor)
        let threads = await withTaskExecutorPreference(executor) {
            var seen: [UInt] = []
            for _ in 0..<50 {
                seen.append(currentThread())
                seen.append(await actor.thread())
                await Task.yield()
            }
            return seen
        }
        XCTAssertEqual(Set(threads).count, 1, "every turn and every actor call on the one thread")
        let outside = await Task.detached { currentThread() }.value
        XCTAssertNotEqual(threads.first, outside, "not a cooperative-pool thread")
    }

    func testTimersFireOnTheThreadAtTheirTime() async {
        let executor = ThreadExecutor(name: "test-timers")
        let start = ContinuousClock.now
        let fired: [(Int, UInt, Duration)] = await withCheckedContinuation { continuation in
            let log = Mutex<[(Int, UInt, Duration)]>([])
            for (i, ms) in [(0, 60), (1, 20), (2, 40)] {
                executor.schedule(after: .milliseconds(ms)) {
                    let all = log.withLock { log -> [(Int, UInt, Duration)]? in
                        log.append((i, currentThread(), ContinuousClock.now - start))
                        return log.count == 3 ? log : nil
                    }
                    if let all { continuation.resume(returning: all) }
                }
            }
        }
        XCTAssertEqual(fired.map(\.0), [1, 2, 0], "soonest first")
        XCTAssertEqual(Set(fired.map(\.1)).count, 1)
        XCTAssertGreaterThanOrEqual(fired[0].2, .milliseconds(19))
        XCTAssertGreaterThanOrEqual(fired[2].2, .milliseconds(59))
    }

    func testAWakeSignalTimedOnItEndsAtTheTimeoutOrAtTheSignal() async {
        let executor = ThreadExecutor(name: "test-wake")
        let wake = WakeSignal(timers: executor)
        let timedOut = await withTaskExecutorPreference(executor) {
            let start = ContinuousClock.now
            await wake.wait(timeout: .milliseconds(50))
            return ContinuousClock.now - start
        }
        XCTAssertGreaterThanOrEqual(timedOut, .milliseconds(45))
        XCTAssertLessThan(timedOut, .seconds(2))
        let signaller = Task.detached {
            try? await Task.sleep(for: .milliseconds(10))
            wake.signal()
        }
        let signalled = await withTaskExecutorPreference(executor) {
            let start = ContinuousClock.now
            await wake.wait(timeout: .seconds(5))
            return ContinuousClock.now - start
        }
        await signaller.value
        XCTAssertLessThan(signalled, .seconds(1))
    }

    func testAnIdleThreadEndsAndTheNextJobStartsAnother() async throws {
        let executor = ThreadExecutor(name: "test-idle", idleExit: .milliseconds(50))
        let actor = Pinned(executor)
        _ = await actor.thread()
        XCTAssertTrue(threadNames().contains("test-idle"))
        var gone = false
        for _ in 0..<100 where !gone {  // bounded: up to 2 s
            try await Task.sleep(for: .milliseconds(20))
            gone = !threadNames().contains("test-idle")
        }
        XCTAssertTrue(gone, "the idle thread ended")
        _ = await actor.thread()
        XCTAssertTrue(threadNames().contains("test-idle"), "a new thread serves the next job")
    }

    /// The names of this process's threads (`/proc/self/task/*/comm`).
    private func threadNames() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}
