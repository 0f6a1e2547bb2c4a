// What courier writes, read back through the unchanged Sidekiq API and Web UI.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import Ops
import RedisAdapters
import Foundation
import SidekiqModel
import XCTest

/// The unchanged Sidekiq 6.4.1 API reads what courier writes (sidekiq-compat §10).
final class SidekiqAPITests: XCTestCase {
    func testProcessSetWorkersAndStats() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor { request in
            // Longer than one heartbeat interval (5 s), so some beat always sees the job busy.
            if let payload = try? JobPayload(raw: request.body), payload["args"]?.arrayValue?.first == .string("slow") {
                usleep(6_000_000)
            }
            return .json(200, "{\"status\":\"ok\"}")
        }
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url, queues: ["critical", "default"], concurrency: 10)
        configuration.tag = "t"
        configuration.labels = ["swift"]
        let courier = try RunningCourier(configuration)
        let identity = courier.courier.identity.description
        try await waitUntilAsync("registered", timeout: 10) { (try sidekiqRuby("Sidekiq::ProcessSet.new.size", redisURL: redis.url) as? Int) == 1 }
        let process =
            try sidekiqRuby(
                """
                Sidekiq::ProcessSet.new.size
                p = Sidekiq::ProcessSet.new.first
                {"size" => Sidekiq::ProcessSet.new.size, "identity" => p.identity, "pid" => p["pid"], "hostname" => p["hostname"],
                 "concurrency" => p["concurrency"], "queues" => p["queues"], "tag" => p.tag, "labels" => p.labels,
                 "busy" => p["busy"], "quiet" => p["quiet"], "stopping" => p.stopping?, "rss" => p["rss"], "rtt" => p["rtt_us"],
                 "beat_age" => Time.now.to_f - p["beat"], "started_at" => p["started_at"].class.name,
                 "ttl" => Sidekiq.redis { |c| c.ttl(p.identity) }, "total" => Sidekiq::ProcessSet.new.total_concurrency}
                """, redisURL: redis.url) as! [String: Any]
        XCTAssertEqual(process["size"] as? Int, 1)
        XCTAssertEqual(process["identity"] as? String, identity)
        XCTAssertNotNil(identity.range(of: #"^.+:\d+:[0-9a-f]{12}$"#, options: .regularExpression))
        XCTAssertEqual(process["pid"] as? Int, Int(getpid()))
        XCTAssertEqual(process["concurrency"] as? Int, 10)
        XCTAssertEqual(process["queues"] as? [String], ["critical", "default"])
        XCTAssertEqual(process["tag"] as? String, "t")
        XCTAssertEqual((process["labels"] as? [String])?.contains("swift"), true)
        XCTAssertEqual(process["busy"] as? Int, 0)
        XCTAssertEqual(process["quiet"] as? String, "false")
        XCTAssertEqual(process["stopping"] as? Bool, false)
        XCTAssertGreaterThan(process["rss"] as? Int ?? 0, 0)
        XCTAssertGreaterThanOrEqual(process["rtt"] as? Int ?? -1, 0)
        XCTAssertLessThan(process["beat_age"] as? Double ?? 99, 6)
        XCTAssertEqual(process["started_at"] as? String, "Float")
        XCTAssertTrue((50...60).contains(process["ttl"] as? Int ?? 0))
        XCTAssertEqual(process["total"] as? Int, 10)

        let jid = try sidekiqRuby("NoopJob.perform_async('slow')", redisURL: redis.url) as! String
        try await waitUntilAsync("a beat with the busy job", timeout: 12) {
            (try sidekiqRuby("Sidekiq::Workers.new.size", redisURL: redis.url) as? Int) == 1
        }
        let workers =
            try sidekiqRuby(
                """
                pid, tid, w = Sidekiq::Workers.new.first
                {"size" => Sidekiq::Workers.new.size, "busy" => Sidekiq::Stats.new.workers_size, "pid" => pid, "tid" => tid.class.name,
                 "queue" => w["queue"], "jid" => w["payload"]["jid"], "run_at" => w["run_at"].class.name}
                """, redisURL: redis.url) as! [String: Any]
        XCTAssertEqual(workers["size"] as? Int, 1)
        XCTAssertEqual(workers["busy"] as? Int, 1)
        XCTAssertEqual(workers["pid"] as? String, identity)
        XCTAssertEqual(workers["tid"] as? String, "String")
        XCTAssertEqual(workers["queue"] as? String, "default")
        XCTAssertEqual(workers["jid"] as? String, jid)
        XCTAssertEqual(workers["run_at"] as? String, "Integer")

        // Quiet from the API: the next beat reads it and stops fetching.
        _ = try sidekiqRuby("Sidekiq::ProcessSet.new.first.quiet!", redisURL: redis.url)
        try await waitUntilAsync("quiet seen", timeout: 12) {
            (try sidekiqRuby("Sidekiq::ProcessSet.new.first.stopping?", redisURL: redis.url) as? Bool) == true
        }
        let before = executor.count
        _ = try sidekiqRuby("NoopJob.perform_async(1)", redisURL: redis.url)
        try await Task.sleep(for: .milliseconds(1500))
        XCTAssertEqual(executor.count, before, "a quiet process fetches nothing")
        XCTAssertEqual(try redis.llen("queue:default"), 1)

        // Stop from the API: the process leaves the set.
        _ = try sidekiqRuby("Sidekiq::ProcessSet.new.first.stop!", redisURL: redis.url)
        try await waitUntilAsync("process gone", timeout: 20) {
            (try sidekiqRuby("Sidekiq::ProcessSet.new.size", redisURL: redis.url) as? Int) == 0
        }
        try await courier.stop()
        let stats =
            try sidekiqRuby(
                "s = Sidekiq::Stats.new; [s.processed, s.failed, Sidekiq::Stats::History.new(1).processed.values.first]",
                redisURL: redis.url) as! [Int]
        XCTAssertEqual(stats, [1, 0, 1])
    }

    /// #26: the unchanged Sidekiq Web UI renders every page from what courier wrote.
    func testWebUIPagesRender() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor(behaviour: slowOK(ms: 8000))
        let courier = try RunningCourier(testConfiguration(redis: redis, executorURL: executor.url, queues: ["critical,2", "default"]))
        let jid = try sidekiqRuby("NoopJob.perform_async('slow')", redisURL: redis.url) as! String
        try await waitUntilAsync("job running", timeout: 10) { executor.count == 1 }
        try redis.command([
            "ZADD", "retry", "1900000000.5",
            #"{"class":"NoopJob","args":[1],"jid":"abcabcabcabcabcabcabcabc","queue":"default","retry_count":0,"error_class":"E","error_message":"m","failed_at":1800000000.25}"#,
        ])
        try await waitUntilAsync("a beat with the busy job", timeout: 12) {
            (try sidekiqRuby("Sidekiq::Workers.new.size", redisURL: redis.url) as? Int) == 1
        }
        let pages =
            try sidekiqRuby(
                """
                require "sidekiq/web"; require "rack/mock"
                Sidekiq::Client.push("class" => "NoopJob", "args" => ["x"], "queue" => "unwatched", "at" => Time.now.to_f + 100)
                e = Sidekiq::RetrySet.new.first
                %w[/ /busy /queues /retries /morgue /scheduled /stats /queues/default].push("/retries/#{e.score}-#{e.jid}").to_h do |path|
                  r = Rack::MockRequest.new(Sidekiq::Web.new).get(path, "HTTP_HOST" => "localhost", "rack.session" => {})
                  [path, path == "/busy" ? [r.status, r.body.include?("\(jid)"), r.body.include?(Sidekiq::ProcessSet.new.first["hostname"])] : r.status]
                end
                """, redisURL: redis.url) as! [String: Any]
        try await courier.stop()
        for (path, answer) in pages where path != "/busy" { XCTAssertEqual(answer as? Int, 200, path) }
        let busy = pages["/busy"] as? [Any] ?? []
        XCTAssertEqual(busy.first as? Int, 200)
        XCTAssertEqual(busy.dropFirst().compactMap { $0 as? Bool }, [true, true], "/busy lists the running jid and the process's host")
    }
}
