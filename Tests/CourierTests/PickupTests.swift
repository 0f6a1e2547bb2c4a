// Idle pickup through the queue watchers' claims.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import Ops
import RedisAdapters
import Foundation
import RedisClient
import XCTest

/// Idle pickup through the queue watchers' claims (BLMOVE straight into the
/// in-progress list with a reserved token): the concurrency limit, the
/// tokens' return to a backlog, quiet and shutdown.
final class PickupTests: XCTestCase {
    /// More empty queues than tokens, then a burst into all of them at once:
    /// claims and fetches together never exceed the limit.
    func testClaimsNeverExceedTheConcurrencyLimit() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor(behaviour: slowOK(ms: 20))
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, queues: ["a", "b", "c", "d"], concurrency: 2))
        try await waitForBlockedClients(redis, 4)  // every queue found empty, watchers armed
        _ = try sidekiqRuby(
            """
            %w[a b c d].each { |q| Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => q, 'args' => (1..15).map { |i| [i] }) }
            """, redisURL: redis.url)
        try await waitUntilAsync("60 jobs delivered", timeout: 30) { executor.count == 60 }
        XCTAssertLessThanOrEqual(executor.maxConcurrent, 2)
        XCTAssertEqual(Set(executor.jobBodies).count, 60, "each job once")
        try await courier.stop()
        XCTAssertEqual(try inProgressKeys(redis), [], "nothing left in progress")
    }

    /// A token held for an empty queue comes back when another queue has a backlog.
    func testBacklogGetsTheTokensHeldForEmptyQueues() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor(behaviour: slowOK(ms: 60))
        let courier = try RunningCourier(
            testConfiguration(redis: redis, executorURL: executor.url, queues: ["busy", "idle1", "idle2"], concurrency: 4))
        try await waitForBlockedClients(redis, 3)
        _ = try sidekiqRuby(
            "Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => 'busy', 'args' => (1..40).map { |i| [i] })", redisURL: redis.url)
        try await waitUntilAsync("40 jobs delivered", timeout: 30) { executor.count == 40 }
        XCTAssertEqual(executor.maxConcurrent, 4, "all four tokens work the backlog")
        // The idle queues are still watched afterwards.
        _ = try sidekiqRuby("Sidekiq::Client.push('class' => NoopJob, 'queue' => 'idle2', 'args' => [1])", redisURL: redis.url)
        try await waitUntilAsync("the idle queue's job delivered", timeout: 5) { executor.count == 41 }
        try await courier.stop()
        XCTAssertEqual(try inProgressKeys(redis), [])
    }

    /// With every spare token held by another queue's claim, a claim that finds
    /// work takes them back: the second job of a burst does not wait for the first.
    func testScarceTokensFollowTheBacklog() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor(behaviour: slowOK(ms: 3000))
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, queues: ["a", "b"], concurrency: 2))
        try await waitForBlockedClients(redis, 2)  // both queues empty: one claim each, no token left
        _ = try sidekiqRuby("Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => 'a', 'args' => [[1], [2]])", redisURL: redis.url)
        try await waitUntilAsync("both jobs running while the first still runs", timeout: 2) { executor.count == 2 }
        XCTAssertEqual(executor.maxConcurrent, 2)
        try await courier.stop()
        XCTAssertEqual(try inProgressKeys(redis), [])
    }

    /// Quiet takes the claims out of Redis: a job pushed afterwards stays in
    /// its queue, and stop returns without waiting for a watcher's block to end.
    func testQuietLeavesNewJobsInTheirQueue() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor()
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, queues: ["critical", "default"], concurrency: 5))
        try await waitForBlockedClients(redis, 2)
        courier.courier.quiet()
        try await waitForBlockedClients(redis, 0)  // the watchers are out of Redis
        _ = try sidekiqRuby("NoopJob.perform_async(1); NoopJob.set(queue: 'critical').perform_async(2)", redisURL: redis.url)
        try await Task.sleep(for: .milliseconds(1500))
        XCTAssertEqual(executor.count, 0, "a quiet courier runs nothing")
        XCTAssertEqual(try redis.llen("queue:default"), 1)
        XCTAssertEqual(try redis.llen("queue:critical"), 1)
        let started = ContinuousClock.now
        try await courier.stop()
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2), "no watcher block to sit out")
        XCTAssertEqual(try inProgressKeys(redis), [])
    }

    /// Each idle pickup through a claim counts once in Sidekiq's stats and leaves nothing in progress.
    func testClaimedJobsAreAcknowledged() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor()
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url))
        try await waitForBlockedClients(redis, 1)
        for round in 1...5 {
            _ = try sidekiqRuby("NoopJob.perform_async(\(round))", redisURL: redis.url)
            try await waitUntilAsync("job \(round) delivered", timeout: 3) { executor.count == round }
        }
        try await waitUntilAsync("stat:processed == 5", timeout: 3) { try redis.command(["GET", "stat:processed"]).string == "5" }
        try await courier.stop()
        XCTAssertEqual(try redis.llen("queue:default"), 0)
        XCTAssertEqual(try inProgressKeys(redis), [])
    }

    private func inProgressKeys(_ redis: RedisServer) throws -> [String] {
        (try redis.command(["KEYS", "courier:wip*"]).array ?? []).compactMap(\.string).sorted()
    }
}
