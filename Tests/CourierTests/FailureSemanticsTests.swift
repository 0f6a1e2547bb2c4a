// Sidekiq's retry, dead-set and scheduling semantics through its own API.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import Ops
import RedisAdapters
import Foundation
import MiniHTTP
import SidekiqModel
import Synchronization
import XCTest

/// Sidekiq's retry, dead-set and scheduling semantics, read back through the
/// installed Sidekiq 6.4.1 API as the oracle (sidekiq-compat §10, #9–#19).
final class FailureSemanticsTests: XCTestCase {
    /// Jobs whose first argument is "fail" raise RuntimeError("boom <second arg>") with a backtrace.
    static let failing: @Sendable (HTTPRequest) -> HTTPResponse = { request in
        guard request.path == "/v1/jobs", let payload = try? JobPayload(raw: request.body),
            payload["args"]?.arrayValue?.first == .string("fail")
        else { return .json(200, #"{"status":"ok"}"#) }
        let detail = payload["args"]?.arrayValue?.dropFirst().first?.stringValue ?? ""
        return .json(
            422,
            #"{"status":"failed","error_class":"RuntimeError","error_message":"boom \#(detail)","backtrace":["app/jobs/x.rb:3:in `perform'","lib/y.rb:9"],"retry_in":null,"retry_action":null}"#
        )
    }

    func testRetryDeadAndStatsAsSidekiqReadsThem() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor(behaviour: Self.failing)
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url))
        _ = try sidekiqRuby(
            """
            Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['fail', 'retry3'], 'retry' => 3, 'backtrace' => true)
            Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['fail', 'queue'], 'retry' => 3, 'retry_queue' => 'low')
            Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['fail', 'zero'], 'retry' => 0)
            Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['fail', 'zero-nodead'], 'retry' => 0, 'dead' => false)
            Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['fail', 'off'], 'retry' => false)
            3.times { |i| NoopJob.perform_async(i) }
            """, redisURL: redis.url)
        try await waitUntilAsync("8 jobs delivered", timeout: 15) { executor.count == 8 }
        try await waitUntilAsync("stats written", timeout: 10) { try redis.command(["GET", "stat:processed"]).int == 8 }
        try await courier.stop()
        let result =
            try sidekiqRuby(
                """
                r = Sidekiq::RetrySet.new
                e = r.find { |x| x.args[1] == "retry3" }
                q = r.find { |x| x.args[1] == "queue" }
                d = Sidekiq::DeadSet.new
                z = d.find { |x| x.args[1] == "zero" }
                s = Sidekiq::Stats.new
                {"retry_size" => r.size, "dead_size" => d.size, "processed" => s.processed, "failed" => s.failed,
                 "history" => Sidekiq::Stats::History.new(1).processed.values.first,
                 "history_ttl" => Sidekiq.redis { |c| c.ttl("stat:processed:#{Time.now.utc.strftime('%F')}") },
                 "retry_count" => e["retry_count"], "error_class" => e["error_class"], "error_message" => e["error_message"],
                 "failed_at" => e["failed_at"].class.name, "retried_at" => e["retried_at"], "queue" => e.queue,
                 "backtrace" => e.error_backtrace, "delay" => e.score - e["failed_at"],
                 "retry_queue" => q.queue, "dead_retry_count" => z["retry_count"], "dead_error" => z["error_class"],
                 "web_key" => "#{e.score}-#{e.jid}"}
                """, redisURL: redis.url) as! [String: Any]
        XCTAssertEqual(result["retry_size"] as? Int, 2)  // #11, #14
        XCTAssertEqual(result["dead_size"] as? Int, 1, "retry 0 → dead; dead:false and retry:false → neither")  // #15, #16
        XCTAssertEqual(result["processed"] as? Int, 8)  // #9
        XCTAssertEqual(result["failed"] as? Int, 5)
        XCTAssertEqual(result["history"] as? Int, 8)  // #10
        XCTAssertGreaterThan(result["history_ttl"] as? Int ?? 0, 157_000_000)
        XCTAssertEqual(result["retry_count"] as? Int, 0)  // #11
        XCTAssertEqual(result["error_class"] as? String, "RuntimeError")
        XCTAssertEqual(result["error_message"] as? String, "boom retry3")
        XCTAssertEqual(result["failed_at"] as? String, "Float")
        XCTAssertTrue(result["retried_at"] is NSNull)
        XCTAssertEqual(result["queue"] as? String, "default")
        XCTAssertEqual(result["backtrace"] as? [String], ["app/jobs/x.rb:3:in `perform'", "lib/y.rb:9"], "Sidekiq decodes our error_backtrace")
        XCTAssertTrue((15.0...25.0).contains(result["delay"] as? Double ?? 0), "\(result["delay"] ?? "")")  // #12
        XCTAssertEqual(result["retry_queue"] as? String, "low")  // #14
        XCTAssertEqual(result["dead_retry_count"] as? Int, 0)  // #15
        XCTAssertEqual(result["dead_error"] as? String, "RuntimeError")
    }

    /// A job that dies while the sidecar is restarting still gets its
    /// retries-exhausted hook and death handlers: the call is repeated until
    /// the executor takes it (here: 503 twice, then 200).
    func testExhaustedHooksWaitForTheExecutor() async throws {
        let redis = try RedisServer()
        let refusals = Atomic<Int>(0)
        let executor = try RecordingExecutor { request in
            if request.path.hasPrefix("/v1/jobs/exhausted") {
                return refusals.add(1, ordering: .relaxed).newValue <= 2 ? .json(503, #"{"status":"busy"}"#) : .json(200, #"{"status":"ok"}"#)
            }
            return Self.failing(request)
        }
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url))
        _ = try sidekiqRuby("Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['fail', 'dies'], 'retry' => 0)", redisURL: redis.url)
        try await waitUntilAsync("the hook taken on the third call", timeout: 15) {
            executor.received.filter { $0.path.hasPrefix("/v1/jobs/exhausted") }.count == 3
        }
        let hookBodies = executor.received.filter { $0.path.hasPrefix("/v1/jobs/exhausted") }.map(\.body)
        XCTAssertEqual(Set(hookBodies).count, 1, "the same payload each time")
        XCTAssertEqual(try JobPayload(raw: hookBodies[0])["error_class"]?.stringValue, "RuntimeError")
        let metrics = try httpGet(port: try XCTUnwrap(courier.courier.opsPort), path: "/metrics").body
        XCTAssertTrue(metrics.contains(#"courier_exhausted_hooks_total{result="ok"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"courier_exhausted_hooks_total{result="retried"} 2"#), metrics)
        try await courier.stop()
    }

    /// A hook call answered 500 may have run: it is not repeated (death handlers run at most once).
    func testExhaustedHooksThatMayHaveRunAreNotRepeated() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor { request in
            request.path.hasPrefix("/v1/jobs/exhausted") ? .json(500, #"{"status":"error"}"#) : Self.failing(request)
        }
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url))
        _ = try sidekiqRuby("Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['fail', 'dies'], 'retry' => 0)", redisURL: redis.url)
        try await waitUntilAsync("the hook called", timeout: 10) { executor.received.contains { $0.path.hasPrefix("/v1/jobs/exhausted") } }
        try await Task.sleep(for: .milliseconds(2500))  // longer than the first two retry delays
        XCTAssertEqual(executor.received.filter { $0.path.hasPrefix("/v1/jobs/exhausted") }.count, 1)
        let metrics = try httpGet(port: try XCTUnwrap(courier.courier.opsPort), path: "/metrics").body
        XCTAssertTrue(metrics.contains(#"courier_exhausted_hooks_total{result="failed"} 1"#), metrics)
        try await courier.stop()
    }

    /// #13: a retried job that fails again counts up; failed_at stays, retried_at appears.
    func testSecondFailureFromTheRetrySet() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor(behaviour: Self.failing)
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url)
        configuration.pollIntervalAverage = .milliseconds(500)
        let courier = try RunningCourier(configuration)
        _ = try sidekiqRuby("Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['fail', 'again'], 'retry' => 3)", redisURL: redis.url)
        try await waitUntilAsync("first failure", timeout: 10) { try redis.command(["ZCARD", "retry"]).int == 1 }
        let first = try sidekiqRuby("e = Sidekiq::RetrySet.new.first; e.add_to_queue; e['failed_at']", redisURL: redis.url) as! Double
        try await waitUntilAsync("second failure", timeout: 10) { try executor.count == 2 && redis.command(["ZCARD", "retry"]).int == 1 }
        try await courier.stop()
        let second =
            try sidekiqRuby(
                """
                e = Sidekiq::RetrySet.new.first
                [e["retry_count"], e["failed_at"], e["retried_at"].class.name, e.score - e["retried_at"]]
                """, redisURL: redis.url) as! [Any]
        XCTAssertEqual(second[0] as? Int, 1)
        XCTAssertEqual(second[1] as? Double, first)
        XCTAssertEqual(second[2] as? String, "Float")
        XCTAssertTrue((16.0...35.0).contains(second[3] as? Double ?? 0), "\(second[3])")
    }

    /// #18/#19: scheduled and due retry jobs reach their queue once, with three couriers polling.
    func testScheduledJobsEnqueuedOnceWithThreeCouriers() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor()
        let couriers = try (0..<3).map { _ in
            try CourierProcess(arguments: [
                "--redis-url", redis.url, "--executor-url", executor.url, "-q", "default",
                "--ops-port", "off", "--poll-interval", "0.3", "--log-level", "warning",
            ])
        }
        let jids =
            try sidekiqRuby(
                """
                a = (1..20).map { |i| NoopJob.perform_in(2, i) }
                b = (1..20).map { |i| NoopJob.perform_at(Time.now.to_f + 3, i) }
                r = Sidekiq::Client.push('class' => 'NoopJob', 'args' => ['from-retry'], 'at' => Time.now.to_f + 100)
                job = Sidekiq::ScheduledSet.new.find_job(r)
                Sidekiq.redis { |c| c.zrem('schedule', job.value); c.zadd('retry', Time.now.to_f - 1, job.value) }
                a + b + [r]
                """, redisURL: redis.url) as! [String]
        XCTAssertEqual(Set(jids).count, 41)
        let scheduledBefore = try redis.command(["ZCARD", "schedule"]).int
        XCTAssertEqual(scheduledBefore, 40)
        try await waitUntilAsync("41 jobs delivered", timeout: 30) { executor.count >= 41 }
        try await Task.sleep(for: .seconds(2))
        XCTAssertEqual(executor.jids.sorted(), jids.sorted(), "each scheduled job ran exactly once")
        let delivered = try executor.jobBodies.map { try JobPayload(raw: $0) }
        XCTAssertTrue(delivered.allSatisfy { $0["at"] == nil && $0["enqueued_at"]?.doubleValue != nil })
        for courier in couriers { XCTAssertEqual(courier.terminate(), 0) }
    }

    /// A 6 s executor outage during a 10,000-job run: the breaker opens, no job
    /// gains a retry or dies, all complete after the executor returns. (The
    /// breaker's timing itself is stepped without sleeping in DispatchCoreTests.)
    func testExecutorOutageCostsNoRetries() async throws {
        let redis = try RedisServer()
        let jids =
            try sidekiqRuby(
                "(1..10000).each_slice(1000).flat_map { |s| Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => s.map { |i| [i] }) }",
                redisURL: redis.url) as! [String]
        let down = OutageSwitch()
        let executor = try RecordingExecutor { request in
            if down.isDown { return .json(503, #"{"status":"unavailable"}"#) }
            usleep(1000)
            return .json(200, #"{"status":"ok"}"#)
        }
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url, concurrency: 10)
        configuration.breaker.cooldown = .milliseconds(200)
        configuration.breaker.maxCooldown = .seconds(1)
        let courier = try RunningCourier(configuration)
        try await waitUntilAsync("running", timeout: 10) { executor.count >= 200 }
        down.set(true)
        try await waitUntilAsync("breaker open", timeout: 10) { courier.courier.metrics.render().contains("courier_breaker_state{state=\"open\"} 1") }
        let requeuedAtOpen = executor.count
        try await Task.sleep(for: .seconds(6))
        // While open, only one probe per cool-down (≤ 1 s here) reaches the executor.
        XCTAssertLessThan(executor.count - requeuedAtOpen, 30, "the breaker holds deliveries back during the outage (one probe per cool-down)")
        XCTAssertGreaterThan(try redis.llen("queue:default"), 0, "the backlog waits in Redis")
        down.set(false)
        // At least 10,000, then exactly: a job counted twice fails here with its count, not as a timeout.
        var notProcessed: (any Error)?
        do {
            try await waitUntilAsync(
                "all processed", timeout: 120,
                state: {
                    let lists = (try redis.command(["KEYS", "courier:wip:*:default"]).array ?? []).compactMap(\.string)
                    let held = try lists.map { try redis.llen($0) }.reduce(0, +)
                    let gauges = courier.courier.metrics.render().split(separator: "\n")
                        .filter { $0.hasPrefix("courier_breaker_state{") && $0.contains("} 1") || $0.hasPrefix("courier_jobs_in_flight ") }
                    return "processed \(try redis.command(["GET", "stat:processed"]).int ?? 0), queue \(try redis.llen("queue:default")), "
                        + "in progress \(held), executor received \(executor.count) and runs \(executor.current) now, \(gauges.joined(separator: ", "))"
                }
            ) { try redis.command(["GET", "stat:processed"]).int ?? 0 >= 10000 }
        } catch { notProcessed = error }
        try await courier.stop()  // after a timeout too: a courier left running logs into the next tests
        if let notProcessed { throw notProcessed }
        XCTAssertEqual(try redis.command(["GET", "stat:processed"]).int, 10000, "each job counted once")
        XCTAssertEqual(try redis.command(["ZCARD", "retry"]).int, 0)
        XCTAssertEqual(try redis.command(["ZCARD", "dead"]).int, 0)
        XCTAssertEqual(try redis.command(["GET", "stat:failed"]).int ?? 0, 0)
        let succeeded = Set(executor.received.compactMap { try? JobPayload(raw: $0.body).jid })
        XCTAssertTrue(succeeded.isSuperset(of: jids))
    }
}

final class OutageSwitch: Sendable {
    private let value = Mutex<Bool>(false)
    var isDown: Bool { value.withLock { $0 } }
    func set(_ down: Bool) { value.withLock { $0 = down } }
}
