// `courier status`: the snapshot's parsing and rendering without I/O, then
// against a real redis-server holding data from the real Sidekiq 6.4.1 client
// and a running courier, read by StatusReader and by the executable.
@testable import Config
import CourierService
import Foundation
import RedisClient
import SidekiqModel
@testable import RedisAdapters
@testable import Status
import XCTest

final class StatusTests: XCTestCase {
    // MARK: - Without I/O

    static let fixed = StatusSnapshot(
        takenAt: 1_796_000_000.5, redis: "redis://:***@redis:6379/0", processed: 1234, failed: 7, processedToday: 120,
        failedToday: 2, retry: 3, scheduled: 10, dead: 1,
        queues: [QueueStatus(name: "critical", depth: 0, latency: 0), QueueStatus(name: "default", depth: 1204, latency: 75.25)],
        processes: [
            ProcessStatus(
                identity: "web-1:4242:0123456789ab", hostname: "web-1", pid: 4242, tag: "app", version: "courier 0.1.0",
                queues: ["critical", "default"], concurrency: 10, busy: 4, quiet: false, beat: 1_796_000_000.0, rssKB: 21_500,
                courier: CourierFields(breaker: "open", inFlight: 6, executor: "http://127.0.0.1:8088")),
            ProcessStatus(
                identity: "web-2:77:ffffffffffff", hostname: "web-2", pid: 77, queues: ["default"], concurrency: 5, busy: 1, quiet: true,
                beat: 1_795_999_997.0),
        ],
        rates: Rates(processed: 600, failed: 3, window: 60, source: .minuteMetrics, note: "minute 08:52 UTC, Sidekiq 7 metrics"),
        tenants: [TenantStatus(name: "acme", busy: 3, waiting: 1000), TenantStatus(name: "-", busy: 2, waiting: 4)], tenantsSampled: true)

    func testTextScreen() {
        XCTAssertEqual(
            Self.fixed.text(),
            """
            courier status  redis://:***@redis:6379/0  2026-11-30 00:53:20 UTC
            processed 1234 (today 120)  failed 7 (today 2)  busy 5/15  enqueued 1204  processes 2
            last minute  processed 600  failed 3  (10.0/s)  [minute 08:52 UTC, Sidekiq 7 metrics]
            retry 3  scheduled 10  dead 1

            QUEUE     DEPTH  LATENCY
            critical      0     0.0s
            default    1204    1m15s

            PROCESS                  BUSY  QUIET  BREAKER  HELD      BEAT    RSS  VERSION        QUEUES
            web-1:4242:0123456789ab  4/10  no     open        6  0.5s ago  21 MB  courier 0.1.0  critical,default
            web-2:77:ffffffffffff     1/5  yes    -           -  3.5s ago      -  sidekiq <7     default

            TENANT  BUSY  WAITING*
            acme       3      1000
            -          2         4
            * counted among the oldest jobs of each queue only

            """)
        var empty = StatusSnapshot(takenAt: 0, redis: "redis://127.0.0.1:6379/0")
        empty.rates = Rates(note: "no per-minute metrics")
        XCTAssertTrue(empty.text().contains("last minute  n/a  [no per-minute metrics]\n"), empty.text())
        XCTAssertTrue(empty.text().contains("(no queues)") && empty.text().contains("(no processes)"))
        XCTAssertFalse(empty.text().contains("TENANT"), "no tenant table when no job names one")
    }

    func testJSONObject() throws {
        let text = Self.fixed.json()
        XCTAssertFalse(text.contains("\n"), "one line per snapshot")
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(
            Set(object.keys),
            [
                "taken_at", "redis", "namespace", "processed", "failed", "processed_today", "failed_today", "busy", "concurrency", "enqueued",
                "rates", "sets", "queues", "processes", "tenants", "tenants_sampled", "periodic", "limiters",
            ])
        XCTAssertEqual(object["busy"] as? Int, 5)
        XCTAssertTrue(object["namespace"] is NSNull)
        XCTAssertEqual(object["sets"] as? [String: Int], ["retry": 3, "schedule": 10, "dead": 1])
        let rates = try XCTUnwrap(object["rates"] as? [String: Any])
        XCTAssertEqual(rates["processed"] as? Int, 600)
        XCTAssertEqual(rates["source"] as? String, "minute_metrics")
        let queues = try XCTUnwrap(object["queues"] as? [[String: Any]])
        XCTAssertEqual(queues.map { $0["name"] as? String }, ["critical", "default"])
        XCTAssertEqual(queues[1]["latency"] as? Double, 75.25)
        let processes = try XCTUnwrap(object["processes"] as? [[String: Any]])
        let courierFields = try XCTUnwrap(processes[0]["courier"] as? [String: Any])
        XCTAssertEqual(courierFields["breaker"] as? String, "open")
        XCTAssertEqual(courierFields["in_flight"] as? Int, 6)
        XCTAssertEqual(courierFields["executor"] as? String, "http://127.0.0.1:8088")
        XCTAssertTrue(processes[1]["courier"] is NSNull)
        XCTAssertTrue(processes[1]["version"] is NSNull)
        XCTAssertEqual(processes[1]["quiet"] as? Bool, true)
        XCTAssertEqual((object["tenants"] as? [[String: Any]])?.first?["waiting"] as? Int, 1000)
        var none = StatusSnapshot(takenAt: 1, redis: "r")
        none.rates = Rates()
        let rates2 = try XCTUnwrap((JSONSerialization.jsonObject(with: Data(none.json().utf8)) as? [String: Any])?["rates"] as? [String: Any])
        XCTAssertTrue(rates2["processed"] is NSNull, "n/a is null, not 0")
    }

    func testProcessHashesOfEachWriter() throws {
        let courierInfo = #"{"hostname":"h","pid":12,"tag":"t","concurrency":10,"queues":["a","b"],"version":"courier 0.1.0"}"#
        let courier = try XCTUnwrap(
            ProcessStatus(
                identity: "h:12:abc",
                fields: [courierInfo, "3", "1796000000.25", "false", "20000", "10", #"{"breaker":"half_open","in_flight":4,"executor":"http://x"}"#]))
        XCTAssertEqual(courier.courier, CourierFields(breaker: "half_open", inFlight: 4, executor: "http://x"))
        XCTAssertEqual([courier.busy, courier.concurrency, courier.pid], [3, 10, 12])
        XCTAssertEqual(courier.beat, 1_796_000_000.25)
        XCTAssertTrue(courier.writesMinuteMetrics)
        // Sidekiq 6.4.1: concurrency only in the info, no version, no courier field.
        let six = try XCTUnwrap(
            ProcessStatus(
                identity: "s:1:x", fields: [#"{"hostname":"s","pid":1,"concurrency":25,"queues":["default"]}"#, "0", "1.5", "true", nil, nil, nil]))
        XCTAssertEqual([six.concurrency, six.busy], [25, 0])
        XCTAssertTrue(six.quiet)
        XCTAssertNil(six.courier)
        XCTAssertFalse(six.writesMinuteMetrics)
        // Sidekiq 8.1.2+: the hash's own concurrency wins.
        let eight = try XCTUnwrap(ProcessStatus(identity: "e", fields: [#"{"version":"8.1.2","concurrency":5}"#, "1", nil, "false", nil, "7", nil]))
        XCTAssertEqual(eight.concurrency, 7)
        XCTAssertTrue(eight.writesMinuteMetrics)
        XCTAssertNil(ProcessStatus(identity: "gone", fields: [nil, "1", nil, nil, nil, nil, nil]), "no info: not listed, as ProcessSet")
    }

    func testLatencyTenantsAndMinuteKeys() {
        let now = 1_796_000_000.0
        XCTAssertEqual(StatusParsing.latency(oldest: Array(#"{"class":"A","args":[],"enqueued_at":1795999990.5}"#.utf8), now: now), 9.5)
        XCTAssertEqual(StatusParsing.latency(oldest: Array(#"{"class":"A","args":[],"enqueued_at":1795999990000}"#.utf8), now: now), 10)
        XCTAssertEqual(StatusParsing.latency(oldest: Array("not json".utf8), now: now), 0)
        XCTAssertEqual(StatusParsing.latency(oldest: nil, now: now), 0)
        XCTAssertEqual(StatusParsing.tenant(ofJob: Array(#"{"class":"A","args":[],"tenant":"acme","tags":["x"]}"#.utf8)), "acme")
        XCTAssertEqual(StatusParsing.tenant(ofJob: Array(#"{"class":"A","args":[],"tags":["globex"]}"#.utf8)), "globex")
        XCTAssertEqual(
            StatusParsing.tenant(ofWork: Array(#"{"queue":"q","payload":"{\"class\":\"A\",\"args\":[],\"tenant\":\"acme\"}","run_at":1}"#.utf8)),
            "acme")
        XCTAssertEqual(StatusParsing.tenant(ofWork: Array(#"{"queue":"q","payload":{"class":"A","tags":["initech"]},"run_at":1}"#.utf8)), "initech")
        // 2026-11-30 00:53:20 UTC: the minute before is 00:52 (7.x: hour and minute unpadded; 8.x: two-digit year, padded minute).
        let minute = StatusParsing.previousMinute(now: now)
        XCTAssertEqual(minute.start, 1_795_999_920)
        XCTAssertEqual(minute.keys, ["j|20261130|0:52", "j|261130|0:52"])
        XCTAssertEqual(StatusParsing.previousMinute(now: 1_796_000_700).keys, ["j|20261130|1:4", "j|261130|1:04"])
        XCTAssertEqual(StatusParsing.previousMinute(now: 1_795_996_000).keys, ["j|20261129|23:45", "j|261129|23:45"])
        let totals = StatusParsing.minuteTotals([("A|p", "5"), ("A|f", "1"), ("A|ms", "900"), ("B|p", "2")])
        XCTAssertEqual([totals.processed, totals.failed], [7, 1])

        let six = ProcessStatus(identity: "s")
        let courier = ProcessStatus(identity: "c", version: "courier 0.1.0")
        XCTAssertNil(StatusParsing.minuteRates(totals: (0, 0), keyExists: false, processes: [six], minuteStart: 0).processed)
        XCTAssertNil(StatusParsing.minuteRates(totals: (0, 0), keyExists: false, processes: [], minuteStart: 0).processed)
        let idle = StatusParsing.minuteRates(totals: (0, 0), keyExists: false, processes: [courier], minuteStart: 0)
        XCTAssertEqual(idle.processed, 0, "an idle courier writes no minute hash: zero is the truth")
        let mixed = StatusParsing.minuteRates(totals: (7, 1), keyExists: true, processes: [courier, six], minuteStart: 60)
        XCTAssertEqual(mixed.processed, 7)
        XCTAssertEqual(mixed.note, "minute 00:01 UTC, Sidekiq 7 metrics; 1 process of Sidekiq < 7 not counted")
    }

    func testRateWindowOverTheLastMinute() throws {
        var window = RateWindow()
        XCTAssertNil(window.rates)
        window.add(.init(at: 0, processed: 100, failed: 10))
        XCTAssertNil(window.rates, "one sample is no rate")
        window.add(.init(at: 2, processed: 120, failed: 10))
        XCTAssertEqual(window.rates?.processed, 600, "20 in 2 s = 600 per minute")
        XCTAssertEqual(window.rates?.source, .counters)
        for t in stride(from: 4.0, through: 100, by: 2) { window.add(.init(at: t, processed: 120 + Int(t), failed: 10)) }
        let rates = try XCTUnwrap(window.rates)
        XCTAssertEqual(rates.window, 60, "the window never looks back more than a minute")
        XCTAssertEqual(rates.processed, 60)
        window.add(.init(at: 102, processed: 5, failed: 0))
        XCTAssertNil(window.rates, "counters reset (Stats#reset): start over, never a negative rate")
    }

    func testFlagsSwitchesAndOptionalValues() throws {
        let flags = [Flag("watch", short: "w", value: "seconds", kind: .number, defaultValue: "2", help: "w"), Flag.toggle("json", help: "j")]
        func parse(_ arguments: [String]) throws -> ParsedFlags {
            guard case let .run(parsed) = try FlagParser.parse(arguments, flags: flags) else { throw TestFailure("not run") }
            return parsed
        }
        XCTAssertEqual(try parse(["--watch"]).double("watch"), 2)
        XCTAssertEqual(try parse(["--watch", "5"]).double("watch"), 5)
        XCTAssertEqual(try parse(["--watch=0.5"]).double("watch"), 0.5)
        XCTAssertEqual(try parse(["-w", "--json"]).double("watch"), 2)
        XCTAssertTrue(try parse(["--watch", "--json"]).isSet("json"))
        XCTAssertFalse(try parse([]).isSet("json"))
        XCTAssertNil(try parse([]).double("watch"))
        XCTAssertThrowsError(try parse(["--json=yes"])) { XCTAssertEqual(($0 as? UsageError)?.message, "'--json' takes no value") }
        XCTAssertThrowsError(try parse(["--watch=soon"])) { XCTAssertTrue(($0 as? UsageError)?.message.contains("--watch[=<seconds>]") == true) }
        let help = FlagParser.help(command: "x", overview: "o", discussion: "d", flags: flags)
        XCTAssertTrue(help.contains("-w, --watch[=<seconds>]") && help.contains("  --json "), help)
    }

    func testExecutorURLWithoutCredentials() {
        XCTAssertEqual(ProcessDescription.withoutCredentials("http://u:p@host:8088/x?y"), "http://host:8088/x?y")
        XCTAssertEqual(ProcessDescription.withoutCredentials("http://127.0.0.1:8088"), "http://127.0.0.1:8088")
        XCTAssertEqual(ProcessDescription.withoutCredentials("http://host/a@b"), "http://host/a@b")
    }

    // MARK: - Real Redis, the real Sidekiq client, a running courier

    func testStatusOfCourierAndSidekiqProcessesWithTenants() async throws {
        let redis = try RedisServer()
        let executor = try RecordingExecutor { request in
            if let payload = try? JobPayload(raw: request.body), payload["args"]?.arrayValue?.first == .string("slow") { usleep(6_000_000) }
            return .json(200, "{\"status\":\"ok\"}")
        }
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url, queues: ["critical", "default"], concurrency: 4)
        configuration.heartbeatInterval = .milliseconds(300)
        let courier = try RunningCourier(configuration)
        let identity = courier.courier.identity.description
        _ = try sidekiqRuby(
            """
            4.times { |i| Sidekiq::Client.push("class" => "NoopJob", "args" => [i], "tenant" => "acme") }
            2.times { Sidekiq::Client.push("class" => "NoopJob", "args" => ["slow"], "tenant" => "acme") }
            Sidekiq::Client.push("class" => "NoopJob", "args" => ["slow"], "tags" => ["globex"])
            3.times { Sidekiq::Client.push("class" => "NoopJob", "args" => [1], "queue" => "unwatched", "tenant" => "globex") }
            Sidekiq::Client.push("class" => "NoopJob", "args" => [1], "queue" => "unwatched")
            NoopJob.perform_in(3600, 1)
            Sidekiq.redis do |c|
              c.zadd("retry", Time.now.to_f + 3600, JSON.generate("class" => "NoopJob", "args" => [], "jid" => "r" * 24, "queue" => "default",
                     "retry_count" => 0, "error_class" => "E", "error_message" => "m", "failed_at" => Time.now.to_f))
              c.zadd("dead", Time.now.to_f, JSON.generate("class" => "NoopJob", "args" => [], "jid" => "d" * 24, "queue" => "default"))
              # A Sidekiq 6.4.1 process as its heartbeat writes it (quiet, one busy job in the old :workers hash).
              c.sadd("processes", "old:99:abcdefabcdef")
              c.hmset("old:99:abcdefabcdef", "info", JSON.generate("hostname" => "old", "pid" => 99, "tag" => "", "concurrency" => 25,
                      "queues" => ["default"], "labels" => [], "identity" => "old:99:abcdefabcdef", "started_at" => Time.now.to_f),
                      "busy", 1, "beat", Time.now.to_f, "quiet", "true", "rss", 90000, "rtt_us", 100)
              c.hset("old:99:abcdefabcdef:workers", "tid1", JSON.generate("queue" => "default", "run_at" => Time.now.to_i,
                     "payload" => JSON.generate("class" => "NoopJob", "args" => [], "tenant" => "initech")))
            end
            true
            """, redisURL: redis.url)
        // Read as if a minute had passed, so the minute just written is the "last complete" one.
        let reader = StatusReader(
            worker: RedisWorker(name: "status-test", endpoint: redis.endpoint, logger: testLogger()), keys: SidekiqKeys(),
            redisName: redis.endpoint.redacted, clock: WallClock { WallClock.system.now() + 60 })
        var snapshot = try await reader.read()
        try await waitUntilAsync("a beat with the three slow jobs and the fast ones' minute metrics", timeout: 20) {
            snapshot = try await reader.read()
            return snapshot.processes.first { $0.identity == identity }?.busy == 3 && (snapshot.rates.processed ?? 0) >= 4
        }
        let mine = try XCTUnwrap(snapshot.processes.first { $0.identity == identity })
        XCTAssertEqual(mine.courier, CourierFields(breaker: "closed", inFlight: 3, executor: executor.url))
        XCTAssertEqual([mine.busy, mine.concurrency], [3, 4])
        XCTAssertFalse(mine.quiet)
        XCTAssertEqual(mine.version, "courier 0.1.0")
        let old = try XCTUnwrap(snapshot.processes.first { $0.identity == "old:99:abcdefabcdef" })
        XCTAssertNil(old.courier)
        XCTAssertEqual([old.busy, old.concurrency], [1, 25])
        XCTAssertTrue(old.quiet)
        XCTAssertEqual(snapshot.processes.count, 2)
        XCTAssertEqual([snapshot.retry, snapshot.scheduled, snapshot.dead], [1, 1, 1])
        XCTAssertEqual(snapshot.queues.first { $0.name == "unwatched" }?.depth, 4)
        XCTAssertGreaterThan(snapshot.queues.first { $0.name == "unwatched" }?.latency ?? 0, 0)
        XCTAssertEqual(snapshot.rates.source, .minuteMetrics)
        XCTAssertTrue(snapshot.rates.note?.contains("1 process of Sidekiq < 7 not counted") == true, "\(snapshot.rates)")
        XCTAssertEqual(
            snapshot.tenants,
            [
                TenantStatus(name: "acme", busy: 2, waiting: 0), TenantStatus(name: "globex", busy: 1, waiting: 3),
                TenantStatus(name: "initech", busy: 1, waiting: 0), TenantStatus(name: "-", busy: 0, waiting: 1),
            ])
        XCTAssertFalse(snapshot.tenantsSampled)

        // Sidekiq's own reader still lists both processes, the courier with its numbers, the extra field unseen.
        let seen =
            try sidekiqRuby(
                """
                ps = Sidekiq::ProcessSet.new.to_a
                c = ps.find { |p| p.identity == "\(identity)" }
                [ps.size, c["busy"], c["quiet"], c["concurrency"], c.stopping?.to_s, Sidekiq::Workers.new.size]
                """, redisURL: redis.url) as? [AnyHashable]
        XCTAssertEqual(seen, [2, 3, "false", 4, "false", 4])

        // The executable: --json prints one object; the screen names the breaker; exit codes.
        let (jsonCode, jsonText) = try runCourier(["status", "--json", "--redis-url", redis.url])
        XCTAssertEqual(jsonCode, 0, jsonText)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(jsonText.utf8)) as? [String: Any], jsonText)
        XCTAssertEqual((object["processes"] as? [Any])?.count, 2)
        let (textCode, screen) = try runCourier(["status", "--redis-url", redis.url])
        XCTAssertEqual(textCode, 0)
        XCTAssertTrue(screen.contains(identity) && screen.contains("closed") && screen.contains("unwatched"), screen)
        try await courier.stop()
    }

    func testStatusCommandExitCodesAndWatch() async throws {
        let (downCode, down) = try runCourier(["status", "--redis-url", "redis://127.0.0.1:1/0"])
        XCTAssertEqual(downCode, 1, down)
        XCTAssertTrue(down.contains("Error: cannot read Sidekiq data from Redis at redis://127.0.0.1:1/0"), down)
        for (arguments, message) in [
            (["status", "--bogus"], "Unknown option '--bogus'"), (["status", "--watch=0"], "--watch: must be 0.1"),
            (["status", "--json=1"], "'--json' takes no value"), (["status", "extra"], "Unexpected argument 'extra'"),
        ] {
            let (code, text) = try runCourier(arguments)
            XCTAssertEqual(code, 64, "\(arguments): \(text)")
            XCTAssertTrue(text.contains(message) && text.contains("Usage: courier status"), "\(arguments): \(text)")
        }
        // --watch --json: one object per refresh, no escape codes into a file; the counters' growth becomes the rate.
        let redis = try RedisServer()
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("status-\(UUID().uuidString.prefix(8)).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let child = try ChildProcess(
            packageRoot().appendingPathComponent(".build/debug/courier").path, ["status", "--watch", "0.2", "--json", "--redis-url", redis.url],
            stdout: output, stderr: output)
        func lines() -> [String] { ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init) }
        try await waitUntilAsync("two refreshes", timeout: 10) { lines().count >= 2 }
        try redis.command(["INCRBY", "stat:processed", "30"])
        try await waitUntilAsync("a refresh with the counters' rate", timeout: 10) {
            guard let last = lines().last, let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any],
                let rates = object["rates"] as? [String: Any]
            else { return false }
            return rates["source"] as? String == "counters" && (rates["processed"] as? Int ?? 0) > 0
        }
        child.signal(SIGINT)
        _ = child.wait()
        XCTAssertFalse(lines().contains { $0.contains("\u{1B}[") }, "no ANSI codes when stdout is not a terminal")
        for line in lines() { XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(line.utf8)), line) }
    }

    private func runCourier(_ arguments: [String]) throws -> (Int32, String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("status-\(UUID().uuidString.prefix(8)).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let code = try ChildProcess(packageRoot().appendingPathComponent(".build/debug/courier").path, arguments, stdout: output, stderr: output)
            .wait()
        return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
}
