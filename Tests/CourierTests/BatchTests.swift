// Batches over /v1/jobs/batch against a real executor and Redis.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import Ops
import RedisAdapters
import ExecutorClient
import Foundation
import MiniHTTP
import SidekiqModel
import Synchronization
import XCTest

/// `--batch N`: jobs fetched together travel in one /v1/jobs/batch request, each with its own outcome.
final class BatchTests: XCTestCase {
    /// Jobs fetched together are split so no batch body passes the limit; a job over it goes alone.
    func testBatchesAreSplitUnderTheBodyLimit() {
        XCTAssertEqual(HTTPExecutor.batchGroups(sizes: [10, 10, 10], limit: 100), [0..<3])
        XCTAssertEqual(HTTPExecutor.batchGroups(sizes: [60, 30, 20, 90], limit: 100), [0..<2, 2..<3, 3..<4])
        XCTAssertEqual(HTTPExecutor.batchGroups(sizes: [150, 10, 10], limit: 100), [0..<1, 1..<3])
        XCTAssertEqual(HTTPExecutor.batchGroups(sizes: [], limit: 100), [])
    }

    final class BatchRecorder: Sendable {
        let jids = Mutex<[String]>([])
        let requests = Mutex<Int>(0)

        /// Answers a batch as the protocol says: one result per job; jobs whose first arg is "fail" raise.
        func answer(_ request: HTTPRequest) -> HTTPResponse {
            guard request.path == "/v1/jobs/batch", let envelope = try? JSONReader.parse(request.body),
                let jobs = envelope["jobs"]?.arrayValue
            else { return .json(404, "{}") }
            requests.withLock { $0 += 1 }
            var results: [String] = []
            for entry in jobs {
                let payload = try! JobPayload(raw: Array(entry["payload"]!.stringValue!.utf8))
                jids.withLock { $0.append(payload.jid ?? "") }
                if payload["args"]?.arrayValue?.first == .string("fail") {
                    results.append(
                        #"{"code":422,"status":"failed","error_class":"RuntimeError","error_message":"boom","backtrace":[],"retry_in":null,"retry_action":null}"#
                    )
                } else {
                    results.append(#"{"code":200,"status":"ok"}"#)
                }
            }
            return .json(200, #"{"status":"ok","results":["# + results.joined(separator: ",") + "]}")
        }
    }

    func testBatchesCarryEachJobsOutcome() async throws {
        let redis = try RedisServer()
        let jids =
            try sidekiqRuby(
                """
                ok = Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (1..95).map { |i| [i] })
                bad = Sidekiq::Client.push_bulk('class' => NoopJob, 'retry' => false, 'args' => (1..5).map { ['fail'] })
                ok + bad
                """, redisURL: redis.url) as! [String]
        let recorder = BatchRecorder()
        let executor = try RecordingExecutor { recorder.answer($0) }
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url, concurrency: 20)
        configuration.batch = .fixed(10)
        let courier = try RunningCourier(configuration)
        try await waitUntilAsync("100 jobs acknowledged", timeout: 20) { try redis.command(["GET", "stat:processed"]).int == 100 }
        try await courier.stop()
        XCTAssertEqual(Set(recorder.jids.withLock { $0 }), Set(jids))
        XCTAssertEqual(recorder.jids.withLock { $0.count }, 100, "each job delivered once")
        XCTAssertLessThan(recorder.requests.withLock { $0 }, 100, "jobs travelled in batches")
        XCTAssertEqual(try redis.command(["GET", "stat:failed"]).int, 5)
        XCTAssertEqual(try redis.llen("queue:default"), 0)
    }

    /// An executor without the batch endpoint (404) costs no job a retry.
    func testExecutorWithoutBatchEndpointRequeues() async throws {
        let redis = try RedisServer()
        _ = try sidekiqRuby("Sidekiq::Client.push_bulk('class' => NoopJob, 'args' => (1..30).map { |i| [i] })", redisURL: redis.url)
        let executor = try RecordingExecutor { _ in .json(404, "{}") }
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url, concurrency: 10)
        configuration.batch = .fixed(5)
        let courier = try RunningCourier(configuration)
        try await waitUntilAsync("breaker opened", timeout: 10) {
            courier.courier.metrics.render().contains("courier_breaker_state{state=\"open\"} 1")
        }
        try await courier.stop()
        XCTAssertEqual(try redis.llen("queue:default"), 30, "every job back in its queue")
        XCTAssertEqual(try redis.command(["ZCARD", "retry"]).int, 0)
        XCTAssertEqual(try redis.command(["ZCARD", "dead"]).int, 0)
    }
}
