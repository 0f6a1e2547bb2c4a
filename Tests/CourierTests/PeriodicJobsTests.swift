// Periodic jobs end to end: three courier processes against a real Redis,
// a per-second schedule (the 6-field cron form), the leader killed with
// kill -9 half-way; every tick must be in its queue exactly once, with no gap,
// and the real Sidekiq 6.4.1 API must read the jobs as its own.
import Foundation
import RedisClient
import SidekiqModel
import Status
import XCTest

final class PeriodicJobsTests: XCTestCase {
    func testTicksAreEnqueuedExactlyOnceAcrossALeaderKill() async throws {
        let redis = try RedisServer()
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("periodic-\(UUID().uuidString.prefix(8)).yml")
        try """
        :queues: [default]
        :periodic_lease: 2
        :periodic:
          tick:
            cron: "* * * * * *"
            class: TickJob
            queue: periodic
            args: [1, "a"]
        """.write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }
        // No job of the periodic queue is fetched (the couriers watch `default`): the queue keeps every tick.
        let arguments = [
            "--redis-url", redis.url, "--executor-url", "http://127.0.0.1:\(try freePort())", "-C", config.path,
            "--ops-port", "off", "--log-level", "notice",
        ]
        var couriers = try (0..<3).map { _ in try CourierProcess(arguments: arguments) }
        func leader() throws -> String? { try redis.command(["GET", "courier:periodic:leader"]).string }
        try await waitUntilAsync("a leader enqueueing", timeout: 20) { try redis.llen("queue:periodic") >= 4 }
        let first = try XCTUnwrap(try leader())
        let pid = try XCTUnwrap(Int(first.split(separator: ":")[1]))
        let index = try XCTUnwrap(couriers.firstIndex { Int($0.child.pid) == pid }, "the leader is one of ours")
        couriers[index].kill9()
        let killedAt = Int(Date().timeIntervalSince1970)
        let dead = couriers.remove(at: index)
        try await waitUntilAsync("a survivor leads", timeout: 10) { try leader().map { $0 != first } ?? false }
        let second = try XCTUnwrap(try leader())
        try await waitUntilAsync("ticks after the takeover", timeout: 15) {
            (try redis.command(["HGET", "courier:periodic:last", "tick"]).string.flatMap { Int($0) } ?? 0) >= killedAt + 5
        }
        // `courier status` lists the job with its next run and the leader.
        let reader = StatusReader(
            worker: RedisWorker(name: "status", endpoint: redis.endpoint, logger: testLogger()), keys: SidekiqKeys(), redisName: redis.url)
        let snapshot = try await reader.read()
        XCTAssertEqual(snapshot.periodicLeader, second)
        let listed = try XCTUnwrap(snapshot.periodic.first)
        XCTAssertEqual(
            [listed.name, listed.cron, listed.zone, listed.jobClass, listed.queue], ["tick", "* * * * * *", "UTC", "TickJob", "periodic"])
        XCTAssertGreaterThan(listed.next ?? 0, killedAt)
        XCTAssertGreaterThanOrEqual(listed.lastTick ?? 0, killedAt + 5)
        XCTAssertTrue(snapshot.text().contains("periodic leader: \(second)"), snapshot.text())
        XCTAssertTrue(snapshot.json().contains(#""periodic":{"leader":"\#(second)","jobs":[{"name":"tick","cron":"* * * * * *""#), snapshot.json())
        for courier in couriers { XCTAssertEqual(courier.terminate(), 0, courier.log) }

        // Every tick key once, every queue entry a tick's job, no two alike, and no second missing.
        let tickKeys = (try redis.command(["KEYS", "courier:periodic:tick:tick:*"]).array ?? []).compactMap(\.string)
        var jidByTick: [Int: String] = [:]
        for key in tickKeys {
            let epoch = try XCTUnwrap(Int(key.split(separator: ":").last!))
            jidByTick[epoch] = try redis.command(["GET", key]).string
        }
        let ticks = jidByTick.keys.sorted()
        let (low, high) = (try XCTUnwrap(ticks.first), try XCTUnwrap(ticks.last))
        XCTAssertEqual(ticks, Array(low...high), "a tick every second, none skipped across the takeover\n\(dead.log)\n\(couriers[0].log)")
        XCTAssertLessThan(low, killedAt)
        XCTAssertGreaterThan(high, killedAt + 4)
        let entries = try redis.lrange("queue:periodic")
        let jids = try entries.map { try XCTUnwrap(try JobPayload(raw: $0).jid) }
        XCTAssertEqual(jids.count, ticks.count, "one job per tick")
        XCTAssertEqual(Set(jids), Set(jidByTick.values.compactMap { $0 }), "each job is the one its tick key names")
        XCTAssertEqual(Set(jids).count, jids.count, "no tick enqueued twice")
        XCTAssertTrue(try redis.command(["SISMEMBER", "queues", "periodic"]).int == 1)
        XCTAssertNotEqual(first, second)
        let logs = couriers.map(\.log).joined()
        XCTAssertTrue(logs.contains("periodic leader"), logs)
        XCTAssertTrue(logs.contains("periodic lease released"), "the last leader gave the lease up at stop")

        // The real Sidekiq API reads the jobs as ones its client pushed.
        let seen =
            try sidekiqRuby(
                """
                q = Sidekiq::Queue.new("periodic")
                j = q.to_a.last
                {"size" => q.size, "class" => j.klass, "args" => j.args, "queue" => j.queue, "jid" => j.jid,
                 "created" => j["created_at"].class.name, "enqueued" => j.enqueued_at.class.name, "retry" => j["retry"],
                 "latency" => q.latency.class.name, "queues" => Sidekiq::Queue.all.map(&:name)}
                """, redisURL: redis.url) as! [String: Any]
        XCTAssertEqual(seen["size"] as? Int, ticks.count)
        XCTAssertEqual(seen["class"] as? String, "TickJob")
        XCTAssertEqual(seen["args"] as? [AnyHashable], [1, "a"])
        XCTAssertEqual(seen["queue"] as? String, "periodic")
        XCTAssertEqual(seen["jid"] as? String, jidByTick[low] ?? "", "the oldest job is the first tick's")
        XCTAssertEqual(seen["created"] as? String, "Float")
        XCTAssertEqual(seen["enqueued"] as? String, "Time")
        XCTAssertEqual(seen["retry"] as? Bool, true)
        XCTAssertEqual(seen["latency"] as? String, "Float")
        XCTAssertTrue((seen["queues"] as? [String] ?? []).contains("periodic"))
    }
}
