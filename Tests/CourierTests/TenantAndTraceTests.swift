// Issue 12's pure parts: where a job's tenant comes from (TenantRule), the
// W3C traceparent check, enqueued_at in either unit, the flags/env/sidekiq.yml
// that configure them, what a batch or stream entry carries, and Redis
// error kinds. No I/O.
import Config
import CourierSupport
import ExecutorProtocol
import Ops
import RedisClient
import SidekiqModel
import XCTest

final class TenantAndTraceTests: XCTestCase {
    private func payload(_ json: String) throws -> JobPayload { try JobPayload(raw: Array(json.utf8)) }

    func testDefaultRuleReadsTenantThenFirstTag() throws {
        XCTAssertEqual(try payload(#"{"class":"J","args":[],"tenant":"acme","tags":["x"]}"#).tenant, "acme")
        XCTAssertEqual(try payload(#"{"class":"J","args":[],"tags":["beta","x"]}"#).tenant, "beta")
        XCTAssertNil(try payload(#"{"class":"J","args":[],"tags":[]}"#).tenant)
        XCTAssertNil(try payload(#"{"class":"J","args":[],"tenant":""}"#).tenant)
        XCTAssertEqual(try payload(#"{"class":"J","args":[],"tenant":42}"#).tenant, "42")
    }

    func testConfiguredKeysArgumentsAndGlobalIDs() throws {
        let rule = try TenantRule(parsing: "tenant_id, account_id,tags")
        XCTAssertEqual(rule.sources, [.key("tenant_id"), .key("account_id"), .tags])
        XCTAssertEqual(rule.description, "tenant_id,account_id,tags")
        XCTAssertEqual(rule.tenant(of: try payload(#"{"class":"J","args":[],"account_id":7,"tags":["t"]}"#)), "7")
        XCTAssertEqual(rule.tenant(of: try payload(#"{"class":"J","args":[],"tenant":"ignored","tags":["t"]}"#)), "t")

        let arg = try TenantRule(parsing: "arg:0")
        XCTAssertEqual(arg.tenant(of: try payload(#"{"class":"J","args":["acme",1]}"#)), "acme")
        XCTAssertEqual(arg.tenant(of: try payload(#"{"class":"J","args":[{"_aj_globalid":"gid://app/Account/42"}]}"#)), "Account/42")
        XCTAssertNil(arg.tenant(of: try payload(#"{"class":"J","args":[]}"#)))
        XCTAssertNil(arg.tenant(of: try payload(#"{"class":"J","args":[1.5]}"#)))
        // ActiveJob: the wrapper's one argument holds ActiveJob's own arguments.
        let activeJob = try payload(
            #"{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"BillJob","args":[{"job_class":"BillJob","arguments":[{"_aj_globalid":"gid://shop/Admin::Account/9?expires=1"},{"account_id":5,"_aj_ruby2_keywords":["account_id"]}]}]}"#
        )
        XCTAssertEqual(arg.tenant(of: activeJob), "Admin::Account/9")
        XCTAssertEqual(try TenantRule(parsing: "arg:1:account_id").tenant(of: activeJob), "5")
        XCTAssertNil(try TenantRule(parsing: "arg:2").tenant(of: activeJob))
        XCTAssertEqual(try TenantRule(parsing: "arg:0:org").tenant(of: try payload(#"{"class":"J","args":[{"org":"o1"}]}"#)), "o1")
        let long = String(repeating: "x", count: 500)
        XCTAssertEqual(TenantRule.default.tenant(of: try payload(#"{"class":"J","args":[],"tenant":"\#(long)"}"#))?.count, 200)

        for bad in ["", "a,,b", "arg:", "arg:x", "arg:100", "arg:1:", "has space"] {
            XCTAssertThrowsError(try TenantRule(parsing: bad), bad)
        }
        XCTAssertNil(TenantRule.globalIDOwner("gid://app"))
        XCTAssertNil(TenantRule.globalIDOwner("gid://app/Account"))
        XCTAssertNil(TenantRule.globalIDOwner("http://app/Account/1"))
    }

    func testTraceparentIsValidatedAndEnqueuedAtReadInEitherUnit() throws {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        XCTAssertTrue(TraceParent.isValid(good))
        XCTAssertEqual(TraceParent.traceID(good), "4bf92f3577b34da6a3ce929d0e0e4736")
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // another version
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // uppercase
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", "",
        ] {
            XCTAssertFalse(TraceParent.isValid(bad), bad)
        }
        XCTAssertEqual(try payload(#"{"class":"J","args":[],"traceparent":"\#(good)"}"#).traceparent, good)
        XCTAssertNil(try payload(#"{"class":"J","args":[],"traceparent":"00-zz"}"#).traceparent)
        XCTAssertNil(try payload(#"{"class":"J","args":[],"traceparent":1}"#).traceparent)

        XCTAssertEqual(try payload(#"{"enqueued_at":1795339048.5}"#).enqueuedAt, 1795339048.5)
        XCTAssertEqual(try payload(#"{"enqueued_at":1795339048500}"#).enqueuedAt, 1795339048.5)  // Sidekiq 8: integer ms
        XCTAssertEqual(try payload(#"{"enqueued_at":1795339048}"#).enqueuedAt, 1795339048)  // integer seconds stay seconds
        XCTAssertNil(try payload(#"{"enqueued_at":"2026-01-01"}"#).enqueuedAt)
    }

    /// Batch and stream entries carry `tenant` and `traceparent` when known, and nothing new otherwise.
    func testBatchEntriesCarryTenantAndTraceparent() throws {
        var traced = ExecutionRequest(body: Array(#"{"a":1}"#.utf8), jid: "j1", queue: "q", attempt: 1)
        traced.tenant = "ac\"me"
        traced.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let plain = ExecutionRequest(body: Array(#"{"b":2}"#.utf8), jid: "j2", queue: "q", attempt: 1)
        XCTAssertEqual(
            String(decoding: StreamProtocol.body([traced, plain]), as: UTF8.self),
            #"{"jobs":[{"payload":"{\"a\":1}","queue":"q","tenant":"ac\"me","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},{"payload":"{\"b\":2}","queue":"q"}]}"#
        )
    }

    func testRedisErrorKinds() {
        XCTAssertEqual(RedisError(.connectFailed, "connect to redis://h:1: Connection refused").metricKind, "connection")
        XCTAssertEqual(RedisError(.connectionLost, "Resource temporarily unavailable").metricKind, "timeout")
        XCTAssertEqual(RedisError(.connectFailed, "connect to redis://h:1: Connection timed out").metricKind, "timeout")
        XCTAssertEqual(RedisError(.replyError, "script exchange: ERR user_script:1: boom").metricKind, "script")
        XCTAssertEqual(RedisError(.replyError, "heartbeat: WRONGTYPE Operation").metricKind, "reply")
        XCTAssertEqual(RedisError(.unexpectedReply, "exchange script returned 1").metricKind, "reply")
        struct Other: Error {}
        XCTAssertEqual(Other().metricKind, "other")
    }

    /// `--tenant-key`, `--metrics-tenants`, `--metrics-tenant-limit`: flag > env > sidekiq.yml; bad values name the flag.
    func testTenantOptions() throws {
        func load(_ arguments: [String], env: [String: String] = [:]) throws -> CourierConfiguration {
            guard case let .run(flags) = try FlagParser.parse(["--executor-url", "http://127.0.0.1:1"] + arguments, flags: CourierOptions.flags)
            else { throw TestFailure("not a run") }
            return try CourierOptions.load(flags: flags, env: env).configuration
        }
        let defaults = try load([])
        XCTAssertEqual(defaults.tenant, .default)
        XCTAssertEqual(defaults.metricsLabels, MetricsLabels(tenants: .firstSeen(limit: 50), classLimit: 200))

        let flagged = try load(["--tenant-key", "account_id,tags", "--metrics-tenant-limit", "5"], env: ["COURIER_TENANT_KEY": "x"])
        XCTAssertEqual(flagged.tenant.sources, [.key("account_id"), .tags])
        XCTAssertEqual(flagged.metricsLabels.tenants, .firstSeen(limit: 5))
        let fromEnv = try load([], env: ["COURIER_TENANT_KEY": "arg:0", "COURIER_METRICS_TENANTS": "acme,globex"])
        XCTAssertEqual(fromEnv.tenant.sources, [.argument(index: 0, key: nil)])
        XCTAssertEqual(fromEnv.metricsLabels.tenants, .allow(["acme", "globex"]))

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tenant-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let yml = dir.appendingPathComponent("sidekiq.yml")
        try ":tenant_key: tenant_id\n:metrics_tenants:\n  - acme\n  - initech\n:metrics_tenant_limit: 3\n".write(
            to: yml, atomically: true, encoding: .utf8)
        let fromFile = try load(["-C", yml.path])
        XCTAssertEqual(fromFile.tenant.sources, [.key("tenant_id")])
        XCTAssertEqual(fromFile.metricsLabels.tenants, .allow(["acme", "initech"]))
        XCTAssertEqual(try load(["-C", yml.path, "--metrics-tenants", "x"]).metricsLabels.tenants, .allow(["x"]))

        for (arguments, named) in [
            (["--tenant-key", "arg:x"], "--tenant-key"), (["--metrics-tenant-limit", "-1"], "--metrics-tenant-limit"),
            (["--metrics-tenants", "a,,b"], "--metrics-tenants"),
        ] {
            XCTAssertThrowsError(try load(arguments), "\(arguments)") { error in
                XCTAssertTrue("\(error)".contains(named), "\(error)")
            }
        }
    }
}
