// The retry formula, outcome decisions and the circuit breaker, without I/O.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import Ops
import RedisAdapters
import ExecutorClient
import Foundation
import SidekiqModel
import XCTest

/// Pure tests of the retry formula, outcome decisions and the circuit breaker (no I/O, no sleeping).
final class RetryAndBreakerTests: XCTestCase {
    func testBackoffFormulaBounds() {
        for count in 0...25 {
            let base = count * count * count * count + 15
            XCTAssertEqual(RetrySchedule.delay(count: count, jitter: 0), base)
            XCTAssertEqual(RetrySchedule.delay(count: count, jitter: 9), base + 9 * (count + 1))
            for _ in 0..<20 {
                let d = RetrySchedule.delay(count: count)
                XCTAssertTrue((base...(base + 9 * (count + 1))).contains(d), "count \(count): \(d)")
            }
        }
        XCTAssertEqual(RetrySchedule.delay(count: 2, customSeconds: 100, jitter: 1), 103)
        XCTAssertEqual(RetrySchedule.delay(count: 2, customSeconds: 0, jitter: 0), 31)
        XCTAssertGreaterThan(RetrySchedule.delay(count: Int.max / 2, jitter: 0), 0)  // no overflow trap
    }

    let clock = WallClock { 1_800_000_000.5 }
    func job(_ json: String) -> (FetchedJob, JobPayload) {
        (FetchedJob(queue: "default", original: Array(json.utf8), fetchedAt: .now), try! JobPayload(raw: Array(json.utf8)))
    }

    func testFirstFailureGoesToRetryWithSidekiqFields() throws {
        let policy = OutcomePolicy(clock: clock)
        let (fetched, payload) = job(
            #"{"class":"A","args":[],"jid":"j1","retry":3,"backtrace":true,"queue":"default","retry_queue":"low","created_at":1.5}"#)
        let decision = policy.decide(
            fetched, payload: payload,
            outcome: .failed(JobFailure(errorClass: "RuntimeError", errorMessage: "boom", backtrace: ["a.rb:1", "b.rb:2"])))
        guard case let .retry(body, at) = decision.action else { return XCTFail("\(decision)") }
        let edited = try JobPayload(raw: body)
        XCTAssertEqual(edited.queue, "low")
        XCTAssertEqual(edited["retry_count"]?.intValue, 0)
        XCTAssertEqual(edited["error_class"]?.stringValue, "RuntimeError")
        XCTAssertEqual(edited["error_message"]?.stringValue, "boom")
        XCTAssertEqual(edited.rawValue(of: "failed_at"), "1800000000.5")
        XCTAssertNil(edited["retried_at"])
        XCTAssertNotNil(edited["error_backtrace"]?.stringValue)
        XCTAssertTrue((15...24).contains(Int(at - 1_800_000_000.5)))
    }

    func testLaterFailureCountsUpAndExhausts() throws {
        let policy = OutcomePolicy(clock: clock)
        let failure = ExecutionOutcome.failed(JobFailure(errorClass: "E", errorMessage: "m"))
        let (f1, p1) = job(#"{"class":"A","args":[],"retry":2,"retry_count":0,"failed_at":1.0}"#)
        guard case let .retry(b1, _) = policy.decide(f1, payload: p1, outcome: failure).action else { return XCTFail() }
        let second = try JobPayload(raw: b1)
        XCTAssertEqual(second["retry_count"]?.intValue, 1)
        XCTAssertEqual(second.rawValue(of: "failed_at"), "1.0")
        XCTAssertNotNil(second["retried_at"])
        let (f2, p2) = job(#"{"class":"A","args":[],"retry":2,"retry_count":1,"failed_at":1.0}"#)
        let exhausted = policy.decide(f2, payload: p2, outcome: failure)
        guard case .kill = exhausted.action else { return XCTFail("\(exhausted)") }
        XCTAssertNotNil(exhausted.notifyExhausted)
    }

    func testRetrySettings() {
        let policy = OutcomePolicy(clock: clock)
        let failure = ExecutionOutcome.failed(JobFailure(errorClass: "E", errorMessage: "m"))
        func action(_ json: String) -> CompletionAction { let (f, p) = job(json); return policy.decide(f, payload: p, outcome: failure).action }
        if case .kill = action(#"{"class":"A","args":[],"retry":0}"#) {} else { XCTFail("retry 0 goes straight to dead") }
        XCTAssertEqual(action(#"{"class":"A","args":[],"retry":false}"#), .acknowledgeFailed)
        XCTAssertEqual(action(#"{"class":"A","args":[],"retry":null}"#), .acknowledgeFailed)
        let (f, p) = job(#"{"class":"A","args":[],"retry":false}"#)
        let disabled = policy.decide(f, payload: p, outcome: failure)
        XCTAssertTrue(disabled.deathHandlersOnly, "retry: false runs the death handlers only")
        XCTAssertNotNil(disabled.notifyExhausted)
        XCTAssertEqual(action(#"{"class":"A","args":[],"retry":0,"dead":false}"#), .acknowledgeFailed)
        if case .retry = action(#"{"class":"A","args":[],"retry":true,"retry_count":23}"#) {} else { XCTFail("25 retries by default") }
        if case .kill = action(#"{"class":"A","args":[],"retry":true,"retry_count":24}"#) {} else { XCTFail("exhausted after 25") }
        // Sidekiq 8 payloads keep integer milliseconds.
        if case let .retry(body, _) = action(#"{"class":"A","args":[],"created_at":1700000000000}"#) {
            XCTAssertEqual(try JobPayload(raw: body).rawValue(of: "failed_at"), "1800000000500")
        } else {
            XCTFail()
        }
    }

    func testJobsOwnRetryAnswers() {
        let policy = OutcomePolicy(clock: clock)
        let (f, p) = job(#"{"class":"A","args":[],"retry":5}"#)
        let kill = policy.decide(f, payload: p, outcome: .failed(JobFailure(errorClass: "E", errorMessage: "m", retryAction: "kill")))
        if case .kill = kill.action {} else { XCTFail("\(kill)") }
        let discard = policy.decide(f, payload: p, outcome: .failed(JobFailure(errorClass: "E", errorMessage: "m", retryAction: "discard")))
        XCTAssertEqual(discard.action, .acknowledgeFailed)
        let custom = policy.decide(f, payload: p, outcome: .failed(JobFailure(errorClass: "E", errorMessage: "m", retryIn: 600)))
        guard case let .retry(_, at) = custom.action else { return XCTFail() }
        XCTAssertTrue((600...609).contains(Int(at - 1_800_000_000.5)))
    }

    func testExecutorTroubleIsNotTheJobsFault() {
        let policy = OutcomePolicy(clock: clock)
        let (f, p) = job(#"{"class":"A","args":[],"retry":5}"#)
        XCTAssertEqual(
            policy.decide(f, payload: p, outcome: .executorUnavailable(reason: "down", retryAfter: nil, mayHaveRun: false)).action, .requeue)
        let timeout = policy.decide(f, payload: p, outcome: .timedOut(after: .seconds(30)))
        guard case let .retry(body, _) = timeout.action else { return XCTFail() }
        XCTAssertEqual(try JobPayload(raw: body)["error_class"]?.stringValue, "Courier::JobTimeout")
    }

    func testMalformedJobs() throws {
        let policy = OutcomePolicy(clock: clock)
        let raw = FetchedJob(queue: "default", original: Array("not json".utf8), fetchedAt: .now)
        XCTAssertEqual(policy.malformed(raw, payload: nil, reason: "bad").action, .bury(at: 1_800_000_000.5))
        let (f, p) = job(#"{"args":[]}"#)
        guard case let .kill(body, _) = policy.malformed(f, payload: p, reason: "job has no \"class\"").action else { return XCTFail() }
        XCTAssertEqual(try JobPayload(raw: body)["error_message"]?.stringValue, "job has no \"class\"")
    }

    func testBreakerOpensOnConsecutiveFailuresAndProbes() {
        var settings = CircuitBreakerSettings()
        settings.consecutiveFailures = 3
        settings.cooldown = .seconds(1)
        var breaker = CircuitBreaker(settings: settings)
        let t0 = ContinuousClock.now
        XCTAssertNil(breaker.record(1, executorFailure: true, now: t0))
        XCTAssertNil(breaker.record(1, executorFailure: false, now: t0))  // a success resets the run
        XCTAssertNil(breaker.record(1, executorFailure: true, now: t0))
        XCTAssertNil(breaker.record(1, executorFailure: true, now: t0))
        XCTAssertEqual(breaker.record(1, executorFailure: true, now: t0)?.to, .open)
        XCTAssertEqual(breaker.allowance(now: t0 + .milliseconds(999)).0, 0)
        let (probe, transition) = breaker.allowance(now: t0 + .seconds(1))
        XCTAssertEqual(probe, 1)
        XCTAssertEqual(transition?.to, .halfOpen)
        breaker.startedJob(7)
        XCTAssertEqual(breaker.allowance(now: t0 + .seconds(1)).0, 0)  // one probe only
        XCTAssertNil(breaker.record(1, executorFailure: false, now: t0 + .seconds(1)), "a late result from before the trip does not decide")
        XCTAssertEqual(breaker.record(7, executorFailure: true, now: t0 + .seconds(1))?.to, .open)
        // Second trip in a row: the cool-down doubled.
        XCTAssertEqual(breaker.allowance(now: t0 + .milliseconds(2999)).0, 0)
        XCTAssertEqual(breaker.allowance(now: t0 + .seconds(3)).0, 1)
        breaker.startedJob(8)
        XCTAssertEqual(breaker.record(8, executorFailure: false, now: t0 + .seconds(3))?.to, .closed)
        XCTAssertNil(breaker.allowance(now: t0 + .seconds(3)).0)
    }

    func testBreakerOpensOnFailureRatioAndIgnoresJobErrors() {
        var settings = CircuitBreakerSettings()
        settings.consecutiveFailures = 100
        settings.window = 10
        settings.failureRatio = 0.5
        var breaker = CircuitBreaker(settings: settings)
        let now = ContinuousClock.now
        var opened: CircuitBreaker.Transition?
        for i in 0..<10 where opened == nil { opened = breaker.record(1, executorFailure: i % 2 == 0, now: now) }
        XCTAssertEqual(opened?.to, .open)
        XCTAssertTrue(opened?.reason.contains("ratio") ?? false)
        // Late results while open change nothing.
        XCTAssertNil(breaker.record(1, executorFailure: false, now: now))
        XCTAssertEqual(breaker.state, .open)
    }

    func testOutcomeClassification() {
        XCTAssertEqual(OutcomeClassifier.classify(status: 200, body: [], retryAfter: nil), .succeeded)
        let failed = OutcomeClassifier.classify(
            status: 422,
            body: Array(
                #"{"status":"failed","error_class":"ArgumentError","error_message":"x","backtrace":["a"],"retry_in":null,"retry_action":"kill"}"#.utf8
            ), retryAfter: nil)
        XCTAssertEqual(
            failed, .failed(JobFailure(errorClass: "ArgumentError", errorMessage: "x", backtrace: ["a"], retryIn: nil, retryAction: "kill")))
        for huge in ["1e21", "1e400", "1000000000000000000000"] {
            let answer = OutcomeClassifier.classify(
                status: 422, body: Array(#"{"status":"failed","error_class":"E","error_message":"x","backtrace":[],"retry_in":\#(huge)}"#.utf8),
                retryAfter: nil)
            XCTAssertEqual(
                answer, .failed(JobFailure(errorClass: "E", errorMessage: "x", backtrace: [], retryIn: 1_000_000_000, retryAction: nil)), huge)
        }
        if case .refused(400, _) = OutcomeClassifier.classify(status: 400, body: Array(#"{"reason":"no"}"#.utf8), retryAfter: nil) {
        } else {
            XCTFail()
        }
        if case .refused(413, _) = OutcomeClassifier.classify(status: 413, body: [], retryAfter: nil) {} else { XCTFail() }
        for status in [401, 429, 500, 502, 503, 504, 404] {
            XCTAssertTrue(OutcomeClassifier.classify(status: status, body: [], retryAfter: nil).isExecutorFailure, "\(status)")
        }
        if case let .executorUnavailable(_, retryAfter, _) = OutcomeClassifier.classify(status: 429, body: [], retryAfter: "7") {
            XCTAssertEqual(retryAfter, .seconds(7))
        } else {
            XCTFail()
        }
    }

    func testSignatureMatchesTheProtocolExample() {
        let signer = RequestSigner(secret: Array("s3cret".utf8))
        // HMAC-SHA256("s3cret", "1700000000.{}") computed independently with openssl.
        let value = signer.headerValue(body: Array("{}".utf8), timestamp: 1_700_000_000)
        XCTAssertEqual(value, "t=1700000000,v1=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf")
    }
}
