// Sidekiq 7's execution metrics keys, checked against Sidekiq::Metrics::Query.
@testable import Config
@testable import CourierService
@testable import ExecutorProtocol
@testable import JobDispatch
@testable import Ops
@testable import RedisAdapters
import Foundation
import SidekiqModel
import XCTest

/// Sidekiq 7's execution metrics (the Web UI's Metrics tab): the key layout
/// and buckets without I/O, then real jobs through courier and
/// `courier-test-executor` read back from a real redis-server, and — where the
/// Debian 13 root of scripts/debian13 exists — through Sidekiq 7.3's own
/// `Sidekiq::Metrics::Query`.
final class SidekiqMetricsTests: XCTestCase {
    /// Epoch seconds of a UTC time, computed by Foundation (not by the code under test).
    func epoch(_ year: Int, _ month: Int, _ day: Int, _ hour: Int, _ minute: Int, _ second: Int = 0) -> Double {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))!
            .timeIntervalSince1970
    }

    func testBucketsAreSidekiqs() {
        let cases: [(Int, Int)] = [
            (0, 0), (19, 0), (20, 1), (29, 1), (30, 2), (99, 4), (100, 5), (280, 7), (334, 7), (335, 8),
            (1099, 10), (1100, 11), (334_999, 24), (335_000, 25), (86_400_000, 25),
        ]
        for (ms, bucket) in cases { XCTAssertEqual(SidekiqMetricsLayout.bucket(milliseconds: ms), bucket, "\(ms) ms") }
        XCTAssertEqual(SidekiqMetricsLayout.bucketBounds.count, 26)
    }

    func testKeyNamesAsSidekiq73WritesThem() {
        let t = epoch(2026, 12, 1, 9, 5, 59)
        XCTAssertEqual(SidekiqMetricsLayout.minuteKey(epoch: t + 0.9), "j|20261201|9:5")
        XCTAssertEqual(SidekiqMetricsLayout.histogramKey(jobClass: "HardJob", epoch: t), "HardJob-01-09:5")
        XCTAssertEqual(SidekiqMetricsLayout.minuteKey(epoch: epoch(2026, 12, 31, 23, 59)), "j|20261231|23:59")
        XCTAssertEqual(SidekiqMetricsLayout.histogramKey(jobClass: "A::B", epoch: epoch(2026, 12, 31, 23, 59)), "A::B-31-23:59")
        XCTAssertEqual(SidekiqMetricsLayout.minuteKey(epoch: epoch(2027, 1, 5, 0, 0)), "j|20270105|0:0")
        XCTAssertEqual(SidekiqMetricsLayout.histogramKey(jobClass: "X", epoch: epoch(2027, 1, 5, 0, 0)), "X-05-00:0")
    }

    func testFlushCommandsTakeAndRestore() {
        let metrics = ExecutionMetrics()
        metrics.succeeded(jobClass: "A", milliseconds: 5)
        metrics.succeeded(jobClass: "A", milliseconds: 280)
        metrics.failed(jobClass: "A")
        metrics.failed(jobClass: "B")
        let now = epoch(2026, 12, 1, 9, 5, 30)
        let snapshot = metrics.take()
        XCTAssertTrue(metrics.take().isEmpty, "a take starts the counts again")
        XCTAssertEqual(
            snapshot.commands(now: now, keys: SidekiqKeys()),
            [
                ["HINCRBY", "j|20261201|9:5", "A|p", "3"],
                ["HINCRBY", "j|20261201|9:5", "A|f", "1"],
                ["HINCRBY", "j|20261201|9:5", "A|ms", "285"],
                ["BITFIELD", "A-01-09:5", "OVERFLOW", "SAT", "INCRBY", "u16", "#0", "1", "INCRBY", "u16", "#7", "1"],
                ["EXPIRE", "A-01-09:5", "28800"],
                ["HINCRBY", "j|20261201|9:5", "B|p", "1"],
                ["HINCRBY", "j|20261201|9:5", "B|f", "1"],
                ["EXPIRE", "j|20261201|9:5", "28800"],
            ])
        XCTAssertEqual(snapshot.commands(now: now, keys: SidekiqKeys(namespace: "ns")).first, ["HINCRBY", "ns:j|20261201|9:5", "A|p", "3"])
        XCTAssertEqual(ExecutionMetricsSnapshot().commands(now: now, keys: SidekiqKeys()), [], "nothing counted, nothing written")
        // A failed write puts the counts back, added to whatever came since.
        metrics.failed(jobClass: "B")
        metrics.restore(snapshot)
        let again = metrics.take()
        XCTAssertEqual(again.classes["A"], snapshot.classes["A"])
        XCTAssertEqual(again.classes["B"]?.processed, 2)
        XCTAssertEqual(again.classes["B"]?.failed, 2)
    }

    /// Jobs that succeed, fail, are refused, or are ActiveJob-wrapped, through
    /// courier and the test executor: the minute hashes and histograms in Redis.
    func testMetricsKeysWrittenAtEachBeat() async throws {
        let redis = try RedisServer()
        let executor = try TestExecutorProcess()
        var configuration = try testConfiguration(redis: redis, executorURL: executor.url)
        configuration.heartbeatInterval = .milliseconds(300)
        let started = Date()
        let courier = try RunningCourier(configuration)
        _ = try sidekiqRuby(
            """
            4.times { |i| Sidekiq::Client.push('class' => 'MetricsFast', 'args' => [i]) }
            2.times { Sidekiq::Client.push('class' => 'MetricsSlow', 'args' => [{'sleep_ms' => 250}]) }
            3.times { Sidekiq::Client.push('class' => 'MetricsFailing', 'args' => [{'fail' => 'boom'}], 'retry' => 1) }
            Sidekiq::Client.push('class' => 'MetricsRefused', 'args' => [{'refuse' => 'not a job class'}])
            Sidekiq::Client.push('class' => 'ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper', 'wrapped' => 'MetricsWrapped',
                                 'args' => [{'job_class' => 'MetricsWrapped', 'arguments' => []}])
            """, redisURL: redis.url)
        func fields() throws -> [String: Int] {
            var out: [String: Int] = [:]
            for key in (try redis.command(["KEYS", "j|*"]).array ?? []).compactMap(\.string) {
                let pairs = try redis.command(["HGETALL", key]).array ?? []
                for i in stride(from: 0, to: pairs.count - 1, by: 2) {
                    out[pairs[i].string!, default: 0] += Int(pairs[i + 1].string!)!
                }
            }
            return out
        }
        // Written by the beats while courier runs (not only at exit).
        try await waitUntilAsync("10 executions flushed by a heartbeat", timeout: 20) {
            try fields().filter { $0.key.hasSuffix("|p") }.values.reduce(0, +) == 10
        }
        try await courier.stop()
        let finished = Date()

        let counted = try fields()
        XCTAssertEqual(counted["MetricsFast|p"], 4)
        XCTAssertNil(counted["MetricsFast|f"], "no failures, no field")
        XCTAssertEqual(counted["MetricsSlow|p"], 2)
        XCTAssertTrue((500..<1000).contains(counted["MetricsSlow|ms"] ?? 0), "\(counted)")
        XCTAssertEqual(counted["MetricsFailing|p"], 3)
        XCTAssertEqual(counted["MetricsFailing|f"], 3)
        XCTAssertNil(counted["MetricsFailing|ms"], "failures' times are not counted")
        XCTAssertEqual(counted["MetricsWrapped|p"], 1, "ActiveJob jobs count under `wrapped`")
        XCTAssertFalse(counted.keys.contains { $0.hasPrefix("MetricsRefused") || $0.hasPrefix("ActiveJob::") }, "\(counted)")

        // Key names: UTC minutes between start and finish, as Sidekiq 7.3 formats them.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var hashNames: Set<String> = [], minutes: Set<String> = []
        var t = started.addingTimeInterval(-60)
        while t <= finished.addingTimeInterval(60) {
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: t)
            hashNames.insert(String(format: "j|%04d%02d%02d|%d:%d", c.year!, c.month!, c.day!, c.hour!, c.minute!))
            minutes.insert(String(format: "%02d-%02d:%d", c.day!, c.hour!, c.minute!))
            t.addTimeInterval(30)
        }
        let written = (try redis.command(["KEYS", "j|*"]).array ?? []).compactMap(\.string)
        XCTAssertFalse(written.isEmpty)
        for key in written {
            XCTAssertTrue(hashNames.contains(key), "\(key) is not one of \(hashNames)")
            XCTAssertTrue((1...28_800).contains(try redis.command(["TTL", key]).int ?? 0), key)
        }
        func histogram(_ jobClass: String) throws -> [Int] {
            var sum = [Int](repeating: 0, count: 26)
            for key in (try redis.command(["KEYS", "\(jobClass)-*"]).array ?? []).compactMap(\.string) {
                XCTAssertTrue(minutes.contains(String(key.dropFirst(jobClass.count + 1))), "\(key)")
                XCTAssertTrue((1...28_800).contains(try redis.command(["TTL", key]).int ?? 0), key)
                let gets = (0..<26).flatMap { ["GET", "u16", "#\($0)"] }
                let values = (try redis.command(["BITFIELD", key] + gets).array ?? []).map { $0.int ?? 0 }
                for (i, v) in values.enumerated() { sum[i] += v }
            }
            return sum
        }
        let slow = try histogram("MetricsSlow")
        XCTAssertEqual(slow.reduce(0, +), 2)
        XCTAssertEqual(slow[7] + slow[8], 2, "250 ms jobs fall in 225–335 ms (or 335–500 on a loaded machine): \(slow)")
        let fast = try histogram("MetricsFast")
        XCTAssertEqual(fast.reduce(0, +), 4)
        XCTAssertEqual(fast[0] + fast[1] + fast[2], 4, "\(fast)")
        XCTAssertEqual(try histogram("MetricsFailing").reduce(0, +), 0, "no histogram for failures")
        XCTAssertEqual(try histogram("MetricsWrapped").reduce(0, +), 1)

        // The oracle: Sidekiq 7.3's own query reads the same numbers.
        guard
            let answer = try sidekiq7Ruby(
                """
                require 'sidekiq/metrics/query'
                q = Sidekiq::Metrics::Query.new
                top = q.top_jobs.job_results.transform_values { |r| r.totals.slice('p', 'f', 'ms') }
                slow = q.for_job('MetricsSlow').job_results['MetricsSlow']
                hist = slow.hist.values.reduce([0] * 26) { |a, h| a.zip(h).map { |x, y| x + y.to_i } }
                puts JSON.generate({'top' => top, 'slow_hist' => hist, 'slow_totals' => slow.totals.slice('p', 'f', 'ms')})
                """, redisURL: redis.url) as? [String: Any]
        else {
            throw XCTSkip("raw keys checked; Sidekiq 7.3 oracle skipped: scripts/debian13's root is not available here")
        }
        let top = answer["top"] as? [String: [String: Int]] ?? [:]
        XCTAssertEqual(Set(top.keys), ["MetricsFast", "MetricsSlow", "MetricsFailing", "MetricsWrapped"], "\(answer)")
        XCTAssertEqual(top["MetricsFast"]?["p"], 4)
        XCTAssertEqual(top["MetricsFailing"]?["p"], 3)
        XCTAssertEqual(top["MetricsFailing"]?["f"], 3)
        XCTAssertEqual(top["MetricsSlow"]?["ms"], counted["MetricsSlow|ms"])
        XCTAssertEqual((answer["slow_totals"] as? [String: Int])?["p"], 2)
        XCTAssertEqual(answer["slow_hist"] as? [Int], slow.reversed(), "Query#for_job reads our histogram (newest bucket first)")
    }
}
