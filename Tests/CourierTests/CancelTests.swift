// Protocol v1's cancel end to end: timeouts, shutdown and `courier cancel`.
@testable import Config
@testable import CourierService
@testable import ExecutorProtocol
@testable import JobDispatch
@testable import Ops
@testable import RedisAdapters
import ExecutorClient
import Foundation
import MiniHTTP
import SidekiqModel
import XCTest

/// Protocol v1's cancel: courier tells the executor when it gives up on a
/// running job (job timeout, shutdown deadline) or is asked to cancel it by
/// jid (`courier cancel JID`). Pure classification first, then real
/// redis-server, real courier, and `courier-test-executor` over HTTP.
final class CancelTests: XCTestCase {
    // MARK: - Without I/O

    func testInterruptedAnswersAndCancelResults() {
        let body = Array(
            #"{"status":"interrupted","reason":"cancel","error_class":"Courier::JobCancelled","error_message":"x","backtrace":["a.rb:1"]}"#.utf8)
        XCTAssertEqual(
            OutcomeClassifier.classify(status: 409, body: body, retryAfter: nil),
            .interrupted(reason: "cancel", failure: JobFailure(errorClass: "Courier::JobCancelled", errorMessage: "x", backtrace: ["a.rb:1"])))
        XCTAssertFalse(OutcomeClassifier.classify(status: 409, body: body, retryAfter: nil).isExecutorFailure)
        let shutdown = OutcomeClassifier.classify(
            status: 409, body: Array(#"{"status":"interrupted","reason":"shutdown","error_class":"Sidekiq::Shutdown"}"#.utf8), retryAfter: nil)
        XCTAssertTrue(shutdown.isExecutorFailure, "an executor interrupting jobs at its own shutdown is going away")
        if case .executorUnavailable = OutcomeClassifier.classify(status: 409, body: Array(#"{"status":"conflict"}"#.utf8), retryAfter: nil) {
        } else {
            XCTFail("a 409 that is not an interruption is an unexpected status")
        }
        // In a batch, a job's result can be an interruption too.
        let batch = HTTPResult.response(
            status: 200,
            body: Array(
                #"{"status":"ok","results":[{"code":200,"status":"ok"},{"code":409,"status":"interrupted","reason":"timeout","error_class":"Courier::JobTimeout","error_message":"t"}]}"#
                    .utf8), retryAfter: nil)
        let outcomes = OutcomeClassifier.batchOutcomes(of: batch, count: 2, jobTimeout: .seconds(1))
        XCTAssertEqual(outcomes[0], .succeeded)
        if case .interrupted("timeout", _) = outcomes[1] {} else { XCTFail("\(outcomes[1])") }

        XCTAssertEqual(String(decoding: CancelProtocol.body(jid: "ab\"c", reason: .timeout), as: UTF8.self), #"{"jid":"ab\"c","reason":"timeout"}"#)
        func result(_ status: Int, _ body: String) -> CancelResult {
            CancelProtocol.result(of: .response(status: status, body: Array(body.utf8), retryAfter: nil))
        }
        XCTAssertEqual(result(200, #"{"status":"cancelled"}"#), .cancelled)
        XCTAssertEqual(result(404, #"{"status":"not_running"}"#), .notRunning)
        XCTAssertEqual(result(404, #"{"status":"refused","reason":"no route"}"#), .unsupported)
        XCTAssertEqual(result(401, "{}").label, "failed")
        XCTAssertEqual(CancelProtocol.result(of: .transportError(reason: "reset", sent: true, timedOut: false)).label, "failed")

        func features(_ status: Int, _ body: String) -> Set<String>? {
            CancelProtocol.features(ofHealth: .response(status: status, body: Array(body.utf8), retryAfter: nil))
        }
        XCTAssertEqual(features(200, #"{"status":"ok","protocol":1,"features":["cancel","batch"]}"#), ["cancel", "batch"])
        XCTAssertEqual(features(200, #"{"status":"ok","protocol":1}"#), [], "an executor from before the feature list")
        XCTAssertNil(features(503, "{}"))
    }

    func testInterruptionDecisions() throws {
        let policy = OutcomePolicy(clock: WallClock { 1_800_000_000 })
        let raw = #"{"class":"A","args":[],"jid":"j1","retry":3}"#
        let job = FetchedJob(queue: "default", original: Array(raw.utf8), fetchedAt: .now)
        let payload = try JobPayload(raw: job.original)
        let cancelled = ExecutionOutcome.interrupted(
            reason: "cancel", failure: JobFailure(errorClass: "Courier::JobCancelled", errorMessage: "cancelled"))
        let asked = policy.decide(job, payload: payload, outcome: cancelled, cancelRequested: true)
        XCTAssertEqual(asked.action, .acknowledgeFailed, "failed as Sidekiq counts it, neither retried nor dead")
        XCTAssertEqual(asked.event, .cancelled)
        XCTAssertNil(asked.notifyExhausted, "no death handlers for a cancelled job")
        guard case .retry = policy.decide(job, payload: payload, outcome: cancelled).action else {
            return XCTFail("an interruption courier did not ask for is the job's failure")
        }
        let shutdown = ExecutionOutcome.interrupted(reason: "shutdown", failure: JobFailure(errorClass: "Sidekiq::Shutdown", errorMessage: ""))
        XCTAssertEqual(policy.decide(job, payload: payload, outcome: shutdown).action, .requeue)
        let timeout = ExecutionOutcome.interrupted(reason: "timeout", failure: JobFailure(errorClass: "Courier::JobTimeout", errorMessage: "slow"))
        guard case let .retry(body, _) = policy.decide(job, payload: payload, outcome: timeout, cancelRequested: true).action else {
            return XCTFail()
        }
        XCTAssertEqual(try JobPayload(raw: body)["error_class"]?.stringValue, "Courier::JobTimeout")
    }

    // MARK: - Against real Redis and HTTP

    func metricsText(_ courier: RunningCourier) throws -> String {
        try httpGet(port: try XCTUnwrap(courier.courier.opsPort), path: "/metrics").body
    }

    /// A job past the job timeout: one failed attempt as before, plus a signed
    /// `timeout` cancel the executor acts on; nothing is counted twice.
    func testTimeoutSendsACancelAndCountsOnce() async throws {
        let redis = try RedisServer()
        let executor = try TestExecutorProcess(arguments: ["--secret", "s3cret"])
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url)
        configuration.executor.secret = Array("s3cret".utf8)
        configuration.executor.jobTimeout = .milliseconds(700)
        configuration.heartbeatInterval = .milliseconds(300)
        let courier = try RunningCourier(configuration)
        let jid =
            try sidekiqRuby("Sidekiq::Client.push('class' => 'SlowJob', 'args' => [{'sleep_ms' => 20000}], 'retry' => 3)", redisURL: redis.url)
            as! String
        try await waitUntilAsync("the executor got a timeout cancel and interrupted the job", timeout: 15) {
            try executor.cancels().contains { $0 == (jid, "timeout", true) } && (executor.stats()["interrupted"] as? Int) == 1
        }
        try await waitUntilAsync("courier counted the executor's answer", timeout: 5) {
            try self.metricsText(courier).contains(#"courier_cancels_total{reason="timeout",result="cancelled"} 1"#)
        }
        try await waitUntilAsync("the failed attempt recorded", timeout: 5) { try redis.command(["ZCARD", "retry"]).int == 1 }
        let metrics = try metricsText(courier)
        try await courier.stop()
        XCTAssertEqual(try redis.command(["GET", "stat:processed"]).int, 1)
        XCTAssertEqual(try redis.command(["GET", "stat:failed"]).int, 1)
        XCTAssertEqual(try redis.command(["ZCARD", "dead"]).int, 0)
        let retried = try JobPayload(raw: try XCTUnwrap(redis.command(["ZRANGE", "retry", "0", "-1"]).array?.first?.bytes))
        XCTAssertEqual(retried["error_class"]?.stringValue, "Courier::JobTimeout")
        XCTAssertEqual(try executor.cancels().count, 1)
        XCTAssertEqual(try executor.stats()["received"] as? Int, 1)
        XCTAssertTrue(metrics.contains(#"courier_jobs_total{queue="default",class="SlowJob",outcome="retry",tenant="none"} 1"#), metrics)
        XCTAssertFalse(metrics.contains(#"outcome="cancelled""#), metrics)
        let minute = (try redis.command(["KEYS", "j|*"]).array ?? []).compactMap(\.string)
        let counts = try minute.map { try redis.command(["HMGET", $0, "SlowJob|p", "SlowJob|f"]).array ?? [] }
        XCTAssertEqual(
            counts.map { $0.map { Int($0.string ?? "0")! } }.reduce([0, 0]) { [$0[0] + $1[0], $0[1] + $1[1]] }, [1, 1],
            "the Metrics tab counts the timed-out job once, as failed")
    }

    /// SIGTERM with `-t 1` and a long job: the executor gets a `shutdown`
    /// cancel, the job is back in its queue byte for byte, counted once.
    func testShutdownCancelsTheJobAndPushesItBack() async throws {
        let redis = try RedisServer()
        let jid =
            try sidekiqRuby("Sidekiq::Client.push('class' => 'LongJob', 'args' => [{'sleep_ms' => 30000}, {'x' => 1.50}])", redisURL: redis.url)
            as! String
        let original = try redis.lrange("queue:default")
        let executor = try TestExecutorProcess()
        let courier = try CourierProcess(arguments: ["--redis-url", redis.url, "--executor-url", executor.url, "-t", "1", "--ops-port", "off"])
        try await waitUntilAsync("job running", timeout: 10) { (try executor.stats()["running"] as? Int) == 1 }
        try await waitUntilAsync("process registered", timeout: 10) { try redis.command(["SCARD", "processes"]).int == 1 }
        let started = Date()
        XCTAssertEqual(courier.terminate(), 0, courier.log)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "deadline 1 s, then at most about a second for cancels")
        XCTAssertEqual(try redis.lrange("queue:default"), original, "pushed back unchanged")
        XCTAssertEqual(try executor.cancels().map { "\($0.jid) \($0.reason) \($0.found)" }, ["\(jid) shutdown true"])
        try waitUntil("the executor interrupted the job", timeout: 5) { (try executor.stats()["interrupted"] as? Int) == 1 }
        XCTAssertEqual(try redis.command(["GET", "stat:failed"]).int, 1, "counted like Sidekiq's force-stopped job, once")
        XCTAssertEqual(try redis.command(["GET", "stat:processed"]).int, 1)
        XCTAssertEqual(try redis.command(["ZCARD", "retry"]).int, 0)
        XCTAssertTrue(courier.log.contains("asking the executor to cancel the job"), courier.log)
        XCTAssertTrue(courier.log.contains("reason=shutdown"), courier.log)
    }

    /// An executor slow to answer the cancel does not hold courier's exit for
    /// more than about a second.
    func testShutdownDoesNotWaitLongForCancelAnswers() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor(healthFeatures: ["cancel"]) { request in
            usleep(request.path == "/v1/jobs/cancel" ? 5_000_000 : 20_000_000)
            return .json(200, #"{"status":"ok"}"#)
        }
        _ = try sidekiqRuby("NoopJob.perform_async('long')", redisURL: redis.url)
        let courier = try CourierProcess(arguments: ["--redis-url", redis.url, "--executor-url", executor.url, "-t", "1", "--ops-port", "off"])
        try await waitUntilAsync("job started", timeout: 10) { executor.count == 1 }
        try await waitUntilAsync("process registered", timeout: 10) { try redis.command(["SCARD", "processes"]).int == 1 }
        let started = Date()
        XCTAssertEqual(courier.terminate(), 0, courier.log)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3.5, courier.log)
        XCTAssertEqual(executor.received.filter { $0.path == "/v1/jobs/cancel" }.count, 1)
        XCTAssertEqual(try redis.llen("queue:default"), 1)
    }

    /// An executor whose health lists no `cancel` feature is never sent one.
    func testNoCancelsWithoutTheFeature() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor(behaviour: slowOK(ms: 3000))
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url)
        configuration.executor.jobTimeout = .milliseconds(500)
        let courier = try RunningCourier(configuration)
        _ = try sidekiqRuby("NoopJob.perform_async('slow')", redisURL: redis.url)
        try await waitUntilAsync("the timeout counted", timeout: 10) {
            try self.metricsText(courier).contains(#"courier_cancels_total{reason="timeout",result="unsupported"} 1"#)
        }
        try await courier.stop()
        XCTAssertEqual(executor.received.filter { $0.path == "/v1/jobs/cancel" }.count, 0)
        XCTAssertEqual(try redis.command(["ZCARD", "retry"]).int, 1)
    }

    /// `courier cancel JID` against a running long job: the executor gets a
    /// `cancel`; the job is acknowledged as failed, in neither retry nor dead set.
    func testCancelByJidFromTheCommandLine() async throws {
        let redis = try RedisServer()
        let executor = try TestExecutorProcess()
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url)
        configuration.heartbeatInterval = .milliseconds(300)
        let courier = try RunningCourier(configuration)
        let now = Date().timeIntervalSince1970
        try redis.command(["ZADD", "courier:cancel", String(now - 400), "expired-request"])
        let jid =
            try sidekiqRuby("Sidekiq::Client.push('class' => 'LongJob', 'args' => [{'sleep_ms' => 30000}], 'retry' => 3)", redisURL: redis.url)
            as! String
        try await waitUntilAsync("job running", timeout: 10) { (try executor.stats()["running"] as? Int) == 1 }

        let binary = packageRoot().appendingPathComponent(".build/debug/courier").path
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("cancel-\(UUID().uuidString.prefix(8)).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        XCTAssertEqual(
            try ChildProcess(binary, ["cancel", jid, "--redis-url", redis.url], stdout: output, stderr: output).wait(), 0,
            (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        XCTAssertNotNil(try redis.command(["ZSCORE", "courier:cancel", jid]).string)

        try await waitUntilAsync("the executor got the cancel and interrupted the job", timeout: 10) {
            try executor.cancels().contains { $0 == (jid, "cancel", true) } && (executor.stats()["interrupted"] as? Int) == 1
        }
        try await waitUntilAsync("the job counted failed", timeout: 10) { try redis.command(["GET", "stat:failed"]).int == 1 }
        XCTAssertEqual(try redis.command(["GET", "stat:processed"]).int, 1)
        XCTAssertEqual(try redis.command(["ZCARD", "retry"]).int, 0)
        XCTAssertEqual(try redis.command(["ZCARD", "dead"]).int, 0)
        let inProgress = (try redis.command(["KEYS", "courier:wip:*:default"]).array ?? []).compactMap(\.string)
        XCTAssertEqual(try inProgress.map { try redis.llen($0) }.reduce(0, +), 0, "acknowledged")
        XCTAssertNil(try redis.command(["ZSCORE", "courier:cancel", "expired-request"]).string, "requests older than 5 minutes are trimmed")
        let metrics = try metricsText(courier)
        XCTAssertTrue(metrics.contains(#"courier_jobs_total{queue="default",class="LongJob",outcome="cancelled",tenant="none"} 1"#), metrics)
        XCTAssertTrue(metrics.contains(#"courier_cancels_total{reason="cancel",result="cancelled"} 1"#), metrics)
        try await courier.stop()
        XCTAssertEqual(try executor.cancels().count, 1, "asked once, though the request stays for 5 minutes")
    }

    /// The subcommand's usage: the namespace, and exit 64 naming the problem.
    func testCancelCommandUsage() throws {
        let redis = try RedisServer()
        let binary = packageRoot().appendingPathComponent(".build/debug/courier").path
        func run(_ arguments: [String]) throws -> (Int32, String) {
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("cancel-\(UUID().uuidString.prefix(8)).log").path
            defer { try? FileManager.default.removeItem(atPath: output) }
            let code = try ChildProcess(binary, arguments, stdout: output, stderr: output).wait()
            return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
        }
        XCTAssertEqual(try run(["cancel", "abc123", "--redis-url", redis.url, "--namespace", "myapp"]).0, 0)
        XCTAssertNotNil(try redis.command(["ZSCORE", "myapp:courier:cancel", "abc123"]).string)
        XCTAssertEqual(try redis.command(["EXISTS", "courier:cancel"]).int, 0)
        for (arguments, message) in [
            (["cancel"], "missing <jid>"),
            (["cancel", "a", "b"], "Unexpected argument 'b'"),
            (["cancel", "a", "--bogus", "x"], "Unknown option '--bogus'"),
            (["cancel", "a", "--redis-url", "http://x"], "--redis-url"),
        ] {
            let (code, text) = try run(arguments)
            XCTAssertEqual(code, 64, "\(arguments): \(text)")
            XCTAssertTrue(text.contains(message) && text.contains("Usage: courier cancel <jid>"), "\(arguments): \(text)")
        }
        let (code, text) = try run(["cancel", "a", "--redis-url", "redis://127.0.0.1:1/0"])
        XCTAssertEqual(code, 1, text)
        XCTAssertTrue(text.contains("cannot write the cancel request"), text)
    }
}
