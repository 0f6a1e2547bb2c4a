// Cluster-wide limiters end to end (docs/limiters.md): three courier
// processes against one real Redis and one recording executor, jobs pushed by
// the real Sidekiq client. The executor's own record of each class's most
// jobs at once and of every start is what the limits are checked against;
// one courier is killed with kill -9 while it holds leases, which must come back.
import Foundation
import RedisClient
import SidekiqModel
import Status
import XCTest

final class LimiterTests: XCTestCase {
    /// A Redis, the shared recording executor and the `-C` file with `config` (removed after the test).
    private func cluster(config text: String) throws -> (RedisServer, TestExecutorProcess, URL) {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("limiters-\(UUID().uuidString.prefix(8)).yml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return (try RedisServer(), try TestExecutorProcess(), url)
    }

    /// A courier's arguments against that cluster, quiet but for notices, without an ops port.
    private func arguments(_ redis: RedisServer, _ executor: TestExecutorProcess, _ config: URL, _ extra: [String]) -> [String] {
        ["--redis-url", redis.url, "--executor-url", executor.url, "-C", config.path, "--ops-port", "off", "--log-level", "notice"] + extra
    }

    private func classStats(_ executor: TestExecutorProcess, _ jobClass: String) throws -> (max: Int, starts: [Double]) {
        let classes = try executor.stats()["classes"] as? [String: Any] ?? [:]
        let entry = classes[jobClass] as? [String: Any] ?? [:]
        return (entry["max_concurrency"] as? Int ?? 0, (entry["starts"] as? [Double] ?? []).sorted())
    }

    /// A concurrent limiter on a class (its jobs share the default queue with others) and one on a
    /// queue hold across three couriers of `-c 8`, also while one of them is killed holding leases.
    func testConcurrentLimitersHoldAcrossThreeCouriersAndAKill() async throws {
        let (redis, executor, config) = try cluster(
            config: """
                :queues: [default, erp]
                :limiters:
                  erp_api:
                    type: concurrent
                    count: 3
                    lock_timeout: 10
                    class: ErpJob
                  erp_queue:
                    :type: concurrent
                    :count: 2
                    :queue: erp
                """)
        _ = try sidekiqRuby(
            """
            40.times { |i| Sidekiq::Client.push("class" => "ErpJob", "queue" => "default", "args" => [{"sleep_ms" => 120}, i]) }
            30.times { |i| Sidekiq::Client.push("class" => "QueueJob", "queue" => "erp", "args" => [{"sleep_ms" => 120}, i]) }
            60.times { |i| Sidekiq::Client.push("class" => "FreeJob", "queue" => "default", "args" => [{"sleep_ms" => 60}, i]) }
            """, redisURL: redis.url)
        let args = arguments(redis, executor, config, ["-c", "8", "--poll-interval", "0.3", "--process-ttl", "15"])
        var couriers = try (0..<3).map { _ in try CourierProcess(arguments: args) }
        func leases(_ name: String) throws -> Int { try redis.command(["ZCARD", "courier:limit:\(name):leases"]).int ?? 0 }
        // Kill a courier while it holds a lease of the class limiter.
        var victim: Int?
        try await waitUntilAsync("a courier holding an erp_api lease", timeout: 20) {
            let members = (try redis.command(["ZRANGE", "courier:limit:erp_api:leases", "0", "-1"]).array ?? []).compactMap(\.string)
            for member in members {
                let pid = Int(member.split(separator: ":").dropFirst().first ?? "") ?? -1
                if let index = couriers.firstIndex(where: { Int($0.child.pid) == pid }) {
                    victim = index
                    return true
                }
            }
            return false
        }
        let killed = couriers.remove(at: try XCTUnwrap(victim))
        killed.kill9()
        let processed = { (try redis.command(["GET", "stat:processed"]).int) ?? 0 }
        try await waitUntilAsync("every job processed", timeout: 90) {
            try processed() >= 130 && redis.llen("queue:default") == 0 && redis.llen("queue:erp") == 0
                && (redis.command(["ZCARD", "schedule"]).int ?? 0) == 0
        }
        let erp = try classStats(executor, "ErpJob")
        let queued = try classStats(executor, "QueueJob")
        XCTAssertEqual(erp.max, 3, "ErpJob ran at most 3 at once, and did reach 3\n\(couriers[0].log)")
        XCTAssertEqual(queued.max, 2, "the erp queue ran at most 2 at once, and did reach 2")
        XCTAssertGreaterThan(try classStats(executor, "FreeJob").max, 3, "jobs without a limiter are not held back")
        XCTAssertGreaterThanOrEqual(erp.starts.count, 40)
        XCTAssertGreaterThanOrEqual(queued.starts.count, 30)
        // No job used a retry or failed; the killed courier's leases came back (lapsed or recovered).
        XCTAssertEqual(try redis.command(["ZCARD", "retry"]).int, 0)
        XCTAssertEqual(try redis.command(["ZCARD", "dead"]).int, 0)
        XCTAssertEqual(try redis.command(["GET", "stat:failed"]).int ?? 0, 0)
        try await waitUntilAsync("no lease left", timeout: 20) { try leases("erp_api") == 0 && leases("erp_queue") == 0 }
        for courier in couriers { XCTAssertEqual(courier.terminate(), 0, courier.log) }
        let leftovers = (try redis.command(["KEYS", "courier:leases:*"]).array ?? []).compactMap(\.string)
        XCTAssertEqual(leftovers, [], "every courier's lease registry is gone (retired or recovered)")
    }

    /// After a kill -9, the dead courier's leases lapse at its lock_timeout: a limit of 1 is free again
    /// well before the dead process's jobs are recovered.
    func testAKilledCouriersLeasesComeBack() async throws {
        let (redis, executor, config) = try cluster(
            config: """
                :limiters:
                  mutex:
                    type: concurrent
                    count: 1
                    lock_timeout: 10
                    queue: default
                """)
        _ = try sidekiqRuby(#"Sidekiq::Client.push("class" => "LongJob", "args" => [{"sleep_ms" => 60000}])"#, redisURL: redis.url)
        let args = arguments(redis, executor, config, ["--process-ttl", "60"])
        let first = try CourierProcess(arguments: args)
        try await waitUntilAsync("the long job holds the mutex", timeout: 15) {
            (try redis.command(["ZCARD", "courier:limit:mutex:leases"]).int ?? 0) == 1
        }
        // Renewed at each heartbeat: still held past its lock_timeout while its courier lives.
        let renewedBefore = try XCTUnwrap(
            Double(try redis.command(["ZRANGE", "courier:limit:mutex:leases", "0", "0", "WITHSCORES"]).array?[1].string ?? ""))
        try await Task.sleep(for: .seconds(12))
        let renewedAfter = try XCTUnwrap(
            Double(try redis.command(["ZRANGE", "courier:limit:mutex:leases", "0", "0", "WITHSCORES"]).array?[1].string ?? ""))
        XCTAssertGreaterThan(renewedAfter, renewedBefore + 4, "the heartbeat renews the lease")
        XCTAssertEqual(try redis.command(["ZCARD", "courier:limit:mutex:leases"]).int, 1)
        // `courier status` lists the limiter as the couriers publish it, with its slot taken.
        let reader = StatusReader(
            worker: RedisWorker(name: "status", endpoint: redis.endpoint, logger: testLogger()), keys: SidekiqKeys(), redisName: redis.url)
        let snapshot = try await reader.read()
        XCTAssertEqual(
            snapshot.limiters,
            [LimiterStatus(limiter: Limiter(name: "mutex", kind: .concurrent, count: 1, lockTimeout: 10, queues: ["default"]), used: 1)])
        XCTAssertTrue(snapshot.text().contains("mutex    concurrent     1      1  at once  queue default"), snapshot.text())
        XCTAssertTrue(
            snapshot.json().hasSuffix(
                #""limiters":[{"name":"mutex","used":1,"declaration":{"type":"concurrent","count":1,"interval":1,"lock_timeout":10,"classes":[],"queues":["default"]}}]}"#
            ),
            snapshot.json())
        first.kill9()
        let killedAt = Date()
        _ = try sidekiqRuby(#"Sidekiq::Client.push("class" => "NextJob", "args" => [])"#, redisURL: redis.url)
        let second = try CourierProcess(arguments: args)
        try await waitUntilAsync("the next job runs once the dead courier's lease lapsed", timeout: 30) {
            (try classStats(executor, "NextJob")).starts.count == 1
        }
        let waited = Date().timeIntervalSince(killedAt)
        XCTAssertGreaterThan(waited, 3, "not before the lease lapsed")
        XCTAssertLessThan(waited, 25, "within lock_timeout (10 s) plus a poll, long before the 60 s process TTL")
        XCTAssertEqual(try redis.command(["ZCARD", "retry"]).int, 0)
        XCTAssertEqual(second.terminate(), 0, second.log)
    }

    /// Rate limiters across three couriers: a window limiter on a queue (its jobs wait in the queue) and a
    /// bucket limiter on a class (its jobs wait in the schedule set, untouched, without using a retry).
    func testRateLimitersHoldAcrossThreeCouriers() async throws {
        let (redis, executor, config) = try cluster(
            config: """
                :queues: [default, mail]
                :limiters:
                  mailgun:
                    type: window
                    count: 4
                    interval: 2
                    queue: mail
                  stripe:
                    type: bucket
                    count: 5
                    interval: :second
                    class: [StripeJob]
                """)
        _ = try sidekiqRuby(
            """
            16.times { |i| Sidekiq::Client.push("class" => "MailJob", "queue" => "mail", "args" => [i]) }
            25.times { |i| Sidekiq::Client.push("class" => "StripeJob", "queue" => "default", "args" => [i]) }
            """, redisURL: redis.url)
        let args = arguments(redis, executor, config, ["-c", "10", "--poll-interval", "0.3"])
        let couriers = try (0..<3).map { _ in try CourierProcess(arguments: args) }
        // A deferred job sits in the schedule set as it was pushed: no retry_count, no error.
        var sawDeferred = false
        try await waitUntilAsync("a StripeJob deferred to the schedule set", timeout: 10) {
            for body in (try redis.command(["ZRANGE", "schedule", "0", "-1"]).array ?? []).compactMap(\.bytes) {
                let payload = try JobPayload(raw: body)
                XCTAssertEqual(payload.className, "StripeJob")
                XCTAssertNil(payload["retry_count"])
                XCTAssertNil(payload["error_message"])
                sawDeferred = true
            }
            return sawDeferred
        }
        try await waitUntilAsync("every job ran", timeout: 90) {
            try classStats(executor, "MailJob").starts.count >= 16 && classStats(executor, "StripeJob").starts.count >= 25
        }
        for courier in couriers { XCTAssertEqual(courier.terminate(), 0, courier.log) }
        // Starts are recorded by the executor a little after the fetch that counted them: allow 0.2 s of
        // that (0.6 s when ThreadSanitizer slows every courier down).
        let slack = ProcessInfo.processInfo.environment["COURIER_TSAN"] != nil ? 0.6 : 0.2
        let mail = try classStats(executor, "MailJob").starts
        for (i, start) in mail.enumerated() {
            let inWindow = mail[i...].prefix { $0 < start + 2 - slack }.count
            XCTAssertLessThanOrEqual(inWindow, 4, "at most 4 MailJob starts in any 2 s window: \(mail)")
        }
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(mail.last) - mail[0], 2 * 3 - 0.5, "16 jobs at 4 per 2 s take 3 windows after the first")
        let stripe = try classStats(executor, "StripeJob").starts
        for (i, start) in stripe.enumerated() {
            let inSecond = stripe[i...].prefix { $0 < start + 1 - slack }.count
            XCTAssertLessThanOrEqual(inSecond, 10, "a bucket of 5 per second: at most two buckets' worth in any second: \(stripe)")
        }
        // A start later than `slack` into a clock second was fetched in that second's bucket: at most 5 of them.
        var perBucket: [Int: Int] = [:]
        for start in stripe where start - start.rounded(.down) >= slack { perBucket[Int(start.rounded(.down)), default: 0] += 1 }
        XCTAssertLessThanOrEqual(perBucket.values.max() ?? 0, 5, "at most 5 StripeJob starts per clock second's bucket: \(stripe)")
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(stripe.last) - stripe[0], 25 / 5 - 1.5, "25 jobs at 5 a second")
        XCTAssertEqual(try redis.command(["ZCARD", "retry"]).int, 0, "an over-limit job uses no retry")
        XCTAssertEqual(try redis.command(["ZCARD", "dead"]).int, 0)
        XCTAssertEqual(try redis.command(["GET", "stat:failed"]).int ?? 0, 0)
        XCTAssertGreaterThan(try classStats(executor, "StripeJob").starts.count, 0)
    }
}
