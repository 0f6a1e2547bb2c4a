// Fetching with a real redis-server, Sidekiq client and HTTP executor.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import Ops
import RedisAdapters
import Foundation
import MiniHTTP
import RedisClient
import SidekiqModel
import XCTest

/// Real redis-server, real Sidekiq client, real HTTP executor: what reaches
/// the executor, in what order, and how many at once.
final class FetchTests: XCTestCase {
    /// Every job the real client pushes (perform_async, push_bulk, ActiveJob,
    /// unknown keys) reaches the executor byte for byte as it was in Redis.
    func testBodiesReachTheExecutorByteForByte() async throws {
        let redis = try RedisServer()
        _ = try sidekiqRuby(
            """
            NoopJob.perform_async(1, "two", {"three" => 3.25, "nested" => [nil, true]}, "ünïcödé ✓ \\u2028")
            Sidekiq::Client.push_bulk("class" => NoopJob, "args" => [[1], [2], [3]])
            Sidekiq::Client.push("class" => "NoopJob", "args" => [], "bid" => "batch-1", "tags" => ["acme"], "cattr" => {"user" => 7}, "custom_float" => 1.10)
            AjNoopJob.perform_later("aj-arg", 42)
            """, redisURL: redis.url)
        let (executor, courier) = try await deliverAndCompare(redis, count: 6)
        let aj = try executor.jobBodies.map { try JobPayload(raw: $0) }.first { $0["wrapped"] != nil }
        XCTAssertEqual(aj?["wrapped"]?.stringValue, "AjNoopJob")
        let headers = executor.received[0].headers
        XCTAssertEqual(headers.first { $0.0 == "Content-Type" }?.1, "application/json")
        XCTAssertNotNil(headers.first { $0.0 == "Courier-Jid" })
        XCTAssertEqual(headers.first { $0.0 == "Courier-Attempt" }?.1, "1")
        try await courier.stop()
        try await waitUntilAsync("processed counted", timeout: 5) { (try redis.command(["GET", "stat:processed"]).int) == 6 }
        XCTAssertEqual(try redis.llen("queue:default"), 0)
        let inProgress = try redis.command(["KEYS", "courier:wip*"]).array ?? []
        XCTAssertTrue(inProgress.isEmpty, "in-progress registry left behind: \(inProgress)")
    }

    /// The same with Sidekiq 7.3's client (redis-client, strict args) and
    /// Rails 7.2's ActiveJob adapter, inside scripts/debian13's root.
    func testSidekiq7AndRails72BodiesReachTheExecutorByteForByte() async throws {
        let redis = try RedisServer()
        let pushed = try sidekiq7Ruby(
            """
            require "active_job"
            require "active_job/queue_adapters/sidekiq_adapter"
            ActiveJob::Base.queue_adapter = :sidekiq
            ActiveJob::Base.logger = Logger.new(nil)
            Sidekiq.configure_client { |c| c.redis = {url: ENV.fetch("REDIS_URL")} }
            class NoopJob; include Sidekiq::Job; def perform(*) = nil; end
            class OptionsJob; include Sidekiq::Job; sidekiq_options retry: 3, backtrace: 5, tags: ["acme"]; def perform(*) = nil; end
            class AjNoopJob < ActiveJob::Base; sidekiq_options retry: 1 if respond_to?(:sidekiq_options); def perform(*) = nil; end
            NoopJob.perform_async(1, "two", {"three" => 3.25, "nested" => [nil, true]}, "ünïcödé ✓ \\u2028")
            Sidekiq::Client.push_bulk("class" => NoopJob, "args" => [[1], [2]])
            OptionsJob.perform_async("opts")
            Sidekiq::Client.push("class" => "NoopJob", "args" => [], "bid" => "batch-1", "cattr" => {"user" => 7}, "custom_float" => 1.10)
            AjNoopJob.perform_later("aj-arg", 42, kw: :sym)
            puts JSON.generate(Sidekiq::VERSION)
            """, redisURL: redis.url)
        guard let version = pushed as? String else {
            throw XCTSkip("Sidekiq 7.3 client not run: scripts/debian13's root is not available here")
        }
        XCTAssertTrue(version.hasPrefix("7."), "Sidekiq \(version)")
        let (executor, courier) = try await deliverAndCompare(redis, count: 6)
        let aj = try executor.jobBodies.map { try JobPayload(raw: $0) }.first { $0["wrapped"] != nil }
        XCTAssertEqual(aj?["wrapped"]?.stringValue, "AjNoopJob")
        XCTAssertEqual(aj?.className, "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper")
        try await courier.stop()
    }

    /// Runs courier against a recording executor until the `count` jobs now in
    /// queue:default are delivered, and checks their bodies are Redis's bytes.
    private func deliverAndCompare(_ redis: RedisServer, count: Int) async throws -> (RecordingExecutor, RunningCourier) {
        let inRedis = try redis.lrange("queue:default")
        XCTAssertEqual(inRedis.count, count)
        let executor = try RecordingExecutor()
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url))
        try await waitUntilAsync("\(count) jobs delivered", timeout: 15) { executor.count == count }
        XCTAssertEqual(Set(executor.jobBodies), Set(inRedis))
        return (executor, courier)
    }

    /// Never more than -c jobs at once, and the backlog stays in Redis.
    func testConcurrencyLimitLeavesTheBacklogInRedis() async throws {
        let redis = try RedisServer()
        _ = try sidekiqRuby("Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (1..200).map { |i| [i] })", redisURL: redis.url)
        let executor = try RecordingExecutor(behaviour: slowOK(ms: 20))
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, concurrency: 5))
        try await waitUntilAsync("some jobs delivered", timeout: 10) { executor.count >= 20 }
        let backlog = try redis.llen("queue:default")
        XCTAssertGreaterThan(backlog, 100, "jobs should wait in Redis, not in courier's memory")
        try await waitUntilAsync("200 jobs delivered", timeout: 30) { executor.count == 200 }
        XCTAssertEqual(executor.maxConcurrent, 5)
        XCTAssertEqual(Set(executor.jids).count, 200)
        try await courier.stop()
    }

    /// Quick jobs under a backlog are fetched ahead (up to -c more, in the in-progress
    /// list), yet never more than -c run at once, each runs once, and at quiet the jobs
    /// fetched ahead go back to their queue untouched.
    func testJobsFetchedAheadRunOnceWithinTheConcurrencyAndGoBackAtQuiet() async throws {
        let redis = try RedisServer()
        _ = try sidekiqRuby("Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (1..3000).map { |i| [i] })", redisURL: redis.url)
        let executor = try RecordingExecutor(behaviour: slowOK(ms: 1))
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, concurrency: 4))
        var mostHeld = 0
        try await waitUntilAsync("1000 jobs delivered", timeout: 30) {
            let lists = try redis.command(["KEYS", "courier:wip:*:default"]).array ?? []
            for list in lists.compactMap(\.string) { mostHeld = max(mostHeld, try redis.llen(list)) }
            return executor.count >= 1000
        }
        XCTAssertGreaterThan(mostHeld, 4, "jobs were fetched ahead of a free token")
        XCTAssertLessThanOrEqual(mostHeld, 8, "at most -c ahead")
        courier.courier.quiet()
        try await waitUntilAsync("nothing held after quiet", timeout: 10) {
            let lists = try redis.command(["KEYS", "courier:wip:*:default"]).array ?? []
            return try lists.compactMap(\.string).allSatisfy { try redis.llen($0) == 0 }
        }
        let ran = executor.count
        XCTAssertEqual(executor.maxConcurrent, 4)
        XCTAssertEqual(Set(executor.jids).count, ran, "each job ran once")
        XCTAssertEqual(try redis.llen("queue:default"), 3000 - ran, "the jobs fetched ahead are back in the queue")
        let processed = try sidekiqRuby("Sidekiq::Stats.new.processed", redisURL: redis.url) as? Int
        XCTAssertEqual(processed, ran, "going back counts nothing")
        try await courier.stop()
    }

    /// Strict order drains `critical` before touching `default`.
    func testStrictOrder() async throws {
        let redis = try RedisServer()
        _ = try sidekiqRuby(
            """
            Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (1..50).map { |i| [i] })
            Sidekiq::Client.push_bulk('class' => CriticalJob, 'args' => (1..50).map { |i| [i] })
            """, redisURL: redis.url)
        let executor = try RecordingExecutor()
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, queues: ["critical", "default"], concurrency: 1))
        try await waitUntilAsync("100 jobs delivered", timeout: 20) { executor.count == 100 }
        let queues = try executor.jobBodies.map { try JobPayload(raw: $0).queue ?? "" }
        XCTAssertEqual(queues, Array(repeating: "critical", count: 50) + Array(repeating: "default", count: 50))
        // Within a queue, oldest first.
        let args = try executor.jobBodies.prefix(50).map { try JobPayload(raw: $0)["args"]?.arrayValue?.first?.intValue ?? 0 }
        XCTAssertEqual(args, Array(1...50))
        try await courier.stop()
    }

    /// Weighted order prefers queues in proportion to their weights.
    func testWeightedOrder() async throws {
        let redis = try RedisServer()
        _ = try sidekiqRuby(
            """
            Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (1..400).map { |i| [i] })
            Sidekiq::Client.push_bulk('class' => CriticalJob, 'args' => (1..400).map { |i| [i] })
            """, redisURL: redis.url)
        let executor = try RecordingExecutor()
        let courier = try RunningCourier(
            testConfiguration(redis: redis, executorURL: executor.url, queues: ["critical,3", "default,1"], concurrency: 1))
        try await waitUntilAsync("400 jobs delivered", timeout: 30) { executor.count >= 400 }
        let first = try executor.jobBodies.prefix(400).map { try JobPayload(raw: $0).queue ?? "" }
        let critical = first.filter { $0 == "critical" }.count
        // Expected 300 of 400 (3:1); the binomial spread is about ±9.
        XCTAssertTrue((260...340).contains(critical), "critical got \(critical) of the first 400")
        try await courier.stop()
    }

    /// `--limit slow=2` caps one queue while others use the rest.
    func testPerQueueLimit() async throws {
        let redis = try RedisServer()
        _ = try sidekiqRuby(
            """
            Sidekiq::Client.push_bulk('class' => NoopJob, 'queue' => 'slow', 'args' => (1..30).map { |i| [i] })
            Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (1..60).map { |i| [i] })
            """, redisURL: redis.url)
        let executor = try RecordingExecutor(behaviour: slowOK(ms: 30))
        let courier = try RunningCourier(
            testConfiguration(
                redis: redis, executorURL: executor.url, queues: ["slow", "default"],
                concurrency: 8, limits: ["slow": 2]))
        try await waitUntilAsync("90 jobs delivered", timeout: 30) { executor.count == 90 }
        XCTAssertEqual(executor.maxConcurrent(queue: "slow"), 2)
        XCTAssertGreaterThan(executor.maxConcurrent, 2, "other queues use the remaining tokens")
        XCTAssertLessThanOrEqual(executor.maxConcurrent, 8)
        try await courier.stop()
    }

    /// With a namespace every key, Courier's and Sidekiq's, carries the prefix.
    func testNamespace() async throws {
        let redis = try RedisServer()
        try redis.command([
            "LPUSH", "myapp:queue:default", #"{"class":"NoopJob","args":[1],"jid":"0123456789abcdef01234567","queue":"default","retry":true}"#,
        ])
        try redis.command(["LPUSH", "queue:default", #"{"class":"NoopJob","args":[2],"jid":"ffffffffffffffffffffffff","queue":"default"}"#])
        let executor = try RecordingExecutor()
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, namespace: "myapp"))
        try await waitUntilAsync("namespaced job delivered", timeout: 10) { executor.count == 1 }
        try await courier.stop()
        XCTAssertEqual(executor.jids, ["0123456789abcdef01234567"])
        XCTAssertEqual(try redis.llen("queue:default"), 1, "the un-namespaced queue is not ours")
        XCTAssertEqual(try redis.command(["GET", "myapp:stat:processed"]).int, 1)
        XCTAssertNil(try redis.command(["GET", "stat:processed"]).int)
    }

    /// A job pushed to an idle queue is picked up without polling.
    func testIdleQueuePickup() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor()
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, queues: ["critical", "default"]))
        try await waitForBlockedClients(redis, 2)
        for round in 1...3 {
            _ = try sidekiqRuby("NoopJob.perform_async(\(round))", redisURL: redis.url)
            try await waitUntilAsync("job \(round) delivered", timeout: 3) { executor.count == round }
            try await Task.sleep(for: .milliseconds(2500))  // let the watcher's block time out once
        }
        try await courier.stop()
    }

    /// Bad payloads go to the dead set with a reason; good ones around them still run.
    func testMalformedJobsGoToTheDeadSet() async throws {
        let redis = try RedisServer()
        try redis.command(["LPUSH", "queue:default", "not json"])
        try redis.command(["LPUSH", "queue:default", #"{"args":[1],"jid":"aaaaaaaaaaaaaaaaaaaaaaaa"}"#])
        try redis.command(["LPUSH", "queue:default", #"{"class":"NoopJob","args":"oops","jid":"bbbbbbbbbbbbbbbbbbbbbbbb"}"#])
        // JSON, not an object: kept inside an object, or Sidekiq's JobRecord (and the Web UI) raise on it.
        for notAnObject in ["[1,2]", "42", "null", #""just a string""#] { try redis.command(["LPUSH", "queue:default", notAnObject]) }
        _ = try sidekiqRuby("NoopJob.perform_async(1)", redisURL: redis.url)
        let executor = try RecordingExecutor()
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url))
        try await waitUntilAsync("good job delivered", timeout: 10) { executor.count == 1 }
        try await waitUntilAsync("7 dead", timeout: 10) { try redis.command(["ZCARD", "dead"]).int == 7 }
        try await courier.stop()
        let dead =
            try sidekiqRuby(
                """
                Sidekiq::DeadSet.new.map { |e| [e.value, e.args, e["error_class"], e["error_message"]] }
                """, redisURL: redis.url) as! [[Any]]
        let raw = dead.first { ($0[0] as? String) == "not json" }
        XCTAssertEqual(raw?[1] as? [String], ["not json"], "Sidekiq shows an unparseable job with args == [raw]")
        let noClass = dead.first { ($0[0] as? String)?.contains("aaaa") == true }
        XCTAssertEqual(noClass?[2] as? String, "Courier::MalformedJob")
        XCTAssertTrue((noClass?[3] as? String)?.contains("class") == true)
        let badArgs = dead.first { ($0[0] as? String)?.contains("bbbb") == true }
        XCTAssertTrue((badArgs?[3] as? String)?.contains("args") == true)
        for (raw, kind) in [("[1,2]", "array"), ("42", "number"), ("null", "null"), (#""just a string""#, "string")] {
            let entry = dead.first { ($0[1] as? [String]) == [raw] && ($0[2] as? String) == "Courier::MalformedJob" }
            XCTAssertEqual(entry?[3] as? String, "job is a JSON \(kind), not an object", raw)
        }
        let pages =
            try sidekiqRuby(
                #"require "sidekiq/web"; require "rack/mock"; %w[/morgue].map { Rack::MockRequest.new(Rack::Builder.new { use Rack::Session::Cookie, secret: "s" * 64; run Sidekiq::Web }).get(_1).status }"#,
                redisURL: redis.url) as? [Int]
        XCTAssertEqual(pages, [200], "the Web UI's Dead page reads every entry")
        XCTAssertEqual(try redis.llen("queue:default"), 0)
    }

    /// AUTH and SELECT from REDIS_URL: a password-protected Redis, database 3.
    /// An ACL user without the CLIENT command: idle pickup, quiet and stop
    /// still work (disarmed watchers sit out their block instead of being unblocked).
    func testACLUserWithoutClientCommand() async throws {
        let redis = try RedisServer()
        _ = try redis.command(["ACL", "SETUSER", "worker", "on", ">pw", "~*", "&*", "+@all", "-client"])
        let url = "redis://worker:pw@127.0.0.1:\(redis.port)/0"
        let executor = try RecordingExecutor()
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url)
        configuration.redis = try RedisEndpoint(url: url)
        let courier = try RunningCourier(configuration)
        try await waitForBlockedClients(redis, 1)
        for round in 1...2 {
            _ = try sidekiqRuby("NoopJob.perform_async(\(round))", redisURL: redis.url)
            try await waitUntilAsync("idle pickup \(round)", timeout: 5) { executor.count == round }
        }
        courier.courier.quiet()
        try await Task.sleep(for: .milliseconds(300))
        _ = try sidekiqRuby("NoopJob.perform_async(3)", redisURL: redis.url)
        try await Task.sleep(for: .milliseconds(2500))  // a watcher that could not be unblocked sits out its 2 s block
        XCTAssertEqual(executor.count, 2, "a quiet courier runs nothing")
        XCTAssertEqual(try redis.llen("queue:default"), 1, "the job waits in its queue")
        try await courier.stop()
    }

    func testPasswordAndDatabaseFromTheURL() async throws {
        let redis = try RedisServer(password: "s3cret")
        let url = "redis://:s3cret@127.0.0.1:\(redis.port)/3"
        _ = try sidekiqRuby("NoopJob.perform_async(1)", redisURL: url)
        let executor = try RecordingExecutor()
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url)
        configuration.redis = try RedisEndpoint(url: url)
        let courier = try RunningCourier(configuration)
        try await waitUntilAsync("job from db 3 delivered", timeout: 10) { executor.count == 1 }
        try await courier.stop()
        let processed = try sidekiqRuby("Sidekiq::Stats.new.processed", redisURL: url) as? Int
        XCTAssertEqual(processed, 1)
        XCTAssertEqual(try sidekiqRuby("Sidekiq::Stats.new.processed", redisURL: redis.url) as? Int, 0, "db 0 untouched")
    }
}
