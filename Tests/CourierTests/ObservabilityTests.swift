// Issue 12 end to end: a real `courier` process against a real executor
// (courier-test-executor) and a real redis-server runs a known set of jobs —
// tenants by `tenant_id` and by tags, an allow-listed pair and two others,
// an ActiveJob wrapper, a retry and a death, traceparents valid and not.
// Then its /metrics is scraped with Python's prometheus_client
// (tests/ops/check_metrics.py) and every counter checked against the jobs
// that ran, per tenant; its stdout is read line by line, in text and in
// JSON, for every job's start and end line and their fields; and the
// executor's record says which requests carried traceparent and Courier-Tenant.
import Foundation
import XCTest

final class ObservabilityTests: XCTestCase {
    static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    /// One pushed job and what should become of it.
    struct Job {
        let jid: String
        let jobClass: String
        let tenant: String?
        let event: String
        let json: String
    }

    /// The job set: jids are 24 hex characters, numbered.
    static func jobs(now: Double) -> [Job] {
        let enqueued = String(format: "%.6f", now - 2)  // two seconds in the queue, at least
        var jobs: [Job] = []
        func add(_ cls: String, tenant: String?, event: String, extra: String, args: String = "[1]", wrapped: String? = nil) {
            let jid = String(format: "%024x", jobs.count + 1)
            let classField = wrapped == nil ? cls : "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
            var json = #"{"class":"\#(classField)","args":\#(args),"jid":"\#(jid)","queue":"default","retry":true"#
            if let wrapped { json += #","wrapped":"\#(wrapped)""# }
            json += extra + "}"
            jobs.append(Job(jid: jid, jobClass: wrapped ?? cls, tenant: tenant, event: event, json: json))
        }
        let at = #","enqueued_at":\#(enqueued)"#
        add("OkJob", tenant: "a", event: "done", extra: #","tenant_id":"a","traceparent":"\#(traceparent)""# + at)
        add("OkJob", tenant: "a", event: "done", extra: #","tenant_id":"a","traceparent":"00-nothex"# + "\"" + at)
        // Sidekiq 8 writes enqueued_at as integer milliseconds.
        add("OkJob", tenant: "a", event: "done", extra: #","tenant_id":"a","tags":["ignored"],"enqueued_at":\#(Int((now - 2) * 1000))"#)
        add("OkJob", tenant: "b", event: "done", extra: #","tags":["b","x"]"# + at)
        add("OkJob", tenant: "b", event: "done", extra: #","tags":["b"]"# + at)
        add("FailJob", tenant: "b", event: "retry", extra: #","tags":["b"]"# + at, args: #"[{"fail":"boom"}]"#)
        add("OkJob", tenant: "c", event: "done", extra: #","tenant_id":"c""# + at)
        add("FailJob", tenant: "d", event: "dead", extra: #","tenant_id":"d","retry":0"# + at, args: #"[{"fail":"boom"}]"#)
        add("OkJob", tenant: nil, event: "done", extra: at)
        add("OkJob", tenant: nil, event: "done", extra: at, args: #"[{"job_class":"BillJob","arguments":[]}]"#, wrapped: "BillJob")
        return jobs
    }

    func testMetricsScrapedByPrometheusClientAndTextLogs() throws { try run(format: "text") }

    func testJSONLogs() throws { try run(format: "json") }

    private func run(format: String) throws {
        let redis = try RedisServer()
        let executor = try TestExecutorProcess()
        let opsPort = try freePort()
        let now = Date().timeIntervalSince1970
        let jobs = Self.jobs(now: now)
        // Pushed before courier starts, so one fetch sees them all (and --batch 1 keeps one request per job).
        for job in jobs { _ = try redis.command(["LPUSH", "queue:default", job.json]) }
        _ = try redis.command(["SADD", "queues", "default"])
        let courier = try CourierProcess(arguments: [
            "--redis-url", redis.url, "--executor-url", executor.url, "-c", "5", "--ops-port", "\(opsPort)", "--ops-bind", "127.0.0.1",
            "--log-format", format, "--log-level", "info", "--tenant-key", "tenant_id,tags", "--metrics-tenants", "a,b", "--batch", "1",
        ])
        try waitUntil("\(jobs.count) jobs counted", timeout: 20) {
            let text = (try? httpGet(port: opsPort, path: "/metrics").body) ?? ""
            return text.split(separator: "\n").filter { $0.hasPrefix("courier_jobs_total{") }
                .reduce(0) { $0 + (Int(Double($1.split(separator: " ").last ?? "") ?? 0)) } == jobs.count
        }
        // The heartbeat (every 5 s) samples the set sizes; the hook of the dead job is called once.
        try waitUntil("retry and dead sets sampled", timeout: 15) {
            let text = (try? httpGet(port: opsPort, path: "/metrics").body) ?? ""
            return text.contains(#"courier_set_size{set="retry"} 1.0"#) && text.contains(#"courier_set_size{set="dead"} 1.0"#)
                && text.contains(#"courier_exhausted_hooks_total{result="ok"} 1"#)
        }
        if ProcessInfo.processInfo.environment["COURIER_SHOW_LOGS"] != nil { print(try httpGet(port: opsPort, path: "/metrics").body) }
        try checkMetrics(jobs: jobs, port: opsPort)
        try checkHeaders(jobs: jobs, executor: executor)
        XCTAssertEqual(courier.terminate(), 0, courier.log)
        try checkLogs(jobs: jobs, log: courier.log, format: format)
        if ProcessInfo.processInfo.environment["COURIER_SHOW_LOGS"] != nil { print(courier.log) }
    }

    // MARK: - Metrics

    private func checkMetrics(jobs: [Job], port: Int) throws {
        func label(_ tenant: String?) -> String { tenant.map { ["a", "b"].contains($0) ? $0 : "other" } ?? "none" }
        var counts: [[String]: Int] = [:]
        var ran: [String: Int] = [:]
        for job in jobs {
            counts[["default", job.jobClass, job.event, label(job.tenant)], default: 0] += 1
            ran[label(job.tenant), default: 0] += 1
        }
        let jobSeries = counts.map { key, n in [["queue": key[0], "class": key[1], "outcome": key[2], "tenant": key[3]], n] as [Any] }
        let byTenant = ran.map { tenant, n in [["queue": "default", "tenant": tenant], n] as [Any] }
        let expected: [String: Any] = [
            "counters": [
                "courier_jobs_total": jobSeries,
                "courier_retries_scheduled_total": [[["queue": "default"], 1]],
                "courier_jobs_dead_total": [[["queue": "default"], 1]],
                "courier_exhausted_hooks_total": [[["result": "ok"], 1], [["result": "retried"], 0], [["result": "failed"], 0]],
                // Error series exist at 0 from the start (rate() and alerts see a 0, not no series).
                "courier_redis_errors_total": ["connection", "timeout", "reply", "script", "other"].map { [["kind": $0], 0] as [Any] },
                "courier_executor_errors_total": ["unavailable", "http", "timeout"].map { [["kind": $0], 0] as [Any] },
                "courier_cancels_total": ["timeout", "shutdown", "cancel"].flatMap { reason in
                    ["cancelled", "not_running", "unsupported", "failed"].map { [["reason": reason, "result": $0], 0] as [Any] }
                },
                "courier_recovered_jobs_total": [[[:], 0]],
            ],
            "histograms": ["courier_job_duration_seconds": byTenant, "courier_job_latency_seconds": byTenant],
            // Every job waited at least the 2 s it was enqueued before courier started.
            "min_sums": [
                "courier_job_latency_seconds": ran.map { tenant, n in [["queue": "default", "tenant": tenant], 2.0 * Double(n)] as [Any] }
            ],
            "gauges": [
                "courier_jobs_in_flight": [[[:], 0]], "courier_concurrency_limit": [[[:], 5]],
                "courier_breaker_state": [[["state": "closed"], 1], [["state": "open"], 0]],
                "courier_set_size": [[["set": "retry"], 1], [["set": "dead"], 1], [["set": "schedule"], 0]],
                "courier_queue_depth": [[["queue": "default"], 0]], "courier_queue_latency_seconds": [[["queue": "default"], 0]],
            ],
        ]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("expected-\(UUID().uuidString.prefix(8)).json")
        try JSONSerialization.data(withJSONObject: expected).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = packageRoot().appendingPathComponent("tests/ops/check_metrics.py").path
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("check-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: out) }
        let child = try ChildProcess(
            try which("python3"), [script, "http://127.0.0.1:\(port)/metrics", file.path], stdout: out.path, stderr: out.path)
        let status = child.wait()
        let report = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        print(report)
        XCTAssertEqual(status, 0, report)
        XCTAssertTrue(report.contains("ops: ") && report.contains(" passed, 0 failed"), report)
        try checkDashboard(port: port)
    }

    /// The Grafana dashboard queries only metrics this real scrape has (tests/ops/check_dashboard.py).
    private func checkDashboard(port: Int) throws {
        let scrape = FileManager.default.temporaryDirectory.appendingPathComponent("scrape-\(UUID().uuidString.prefix(8)).txt")
        try httpGet(port: port, path: "/metrics").body.write(to: scrape, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: scrape) }
        let root = packageRoot()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("dashboard-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: out) }
        let child = try ChildProcess(
            root.appendingPathComponent("tests/ops/check_dashboard.sh").path,
            [root.appendingPathComponent("deploy/grafana/courier-dashboard.json").path, scrape.path], stdout: out.path, stderr: out.path)
        let status = child.wait()
        let report = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        print(report)
        XCTAssertEqual(status, 0, "the dashboard against a real scrape: \(report)")
    }

    /// traceparent only where the payload's was valid; Courier-Tenant wherever the job has a tenant.
    private func checkHeaders(jobs: [Job], executor: TestExecutorProcess) throws {
        let body = try httpGet(port: executor.port, path: "/headers").body
        let seen = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: [String: String]])
        for (i, job) in jobs.enumerated() {
            let headers = seen[job.jid] ?? [:]
            XCTAssertEqual(headers["traceparent"] ?? "", i == 0 ? Self.traceparent : "", job.jid)
            XCTAssertEqual(headers["tenant"] ?? "", job.tenant ?? "", job.jid)
        }
    }

    // MARK: - Logs

    /// A log line as (level, message, fields), from either format.
    private func parse(_ line: Substring, format: String) -> (level: String, message: String, fields: [String: String])? {
        if format == "json" {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String] else { return nil }
            return (object["level"] ?? "", object["msg"] ?? "", object)
        }
        // 2026-11-22T11:43:14.812Z pid=19610 INFO: done attempt=1 class=OkJob …
        guard let colon = line.range(of: ": ") else { return nil }
        let level = line[..<colon.lowerBound].split(separator: " ").last.map { $0.lowercased() } ?? ""
        var rest = line[colon.upperBound...]
        let message = String(rest.prefix { $0 != " " })
        rest = rest.dropFirst(message.count)
        var fields: [String: String] = [:]
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces)
            rest = rest[rest.index(after: equals)...]
            if rest.first == "\"" {
                // A quoted value is a JSON string: find its closing quote.
                var end = rest.index(after: rest.startIndex)
                var escaped = false
                while end < rest.endIndex, escaped || rest[end] != "\"" {
                    escaped = !escaped && rest[end] == "\\"
                    end = rest.index(after: end)
                }
                let literal = String(rest[...end])
                fields[key] = (try? JSONSerialization.jsonObject(with: Data(literal.utf8), options: .fragmentsAllowed)) as? String
                rest = rest[rest.index(after: end)...]
            } else {
                let value = rest.prefix { $0 != " " }
                fields[key] = String(value)
                rest = rest.dropFirst(value.count)
            }
        }
        return (level, message, fields)
    }

    private func checkLogs(jobs: [Job], log: String, format: String) throws {
        let lines = log.split(separator: "\n").compactMap { parse($0, format: format) }
        XCTAssertTrue(lines.contains { $0.message == "courier" || $0.message.hasPrefix("courier") }, log)
        for (i, job) in jobs.enumerated() {
            let mine = lines.filter { $0.fields["jid"] == job.jid }
            let start = mine.first { $0.message == "start" }
            XCTAssertEqual(start?.level, "info", "\(job.jid) start: \(mine)")
            XCTAssertEqual(start?.fields["event"], "start")
            XCTAssertEqual(start?.fields["class"], job.jobClass)
            XCTAssertEqual(start?.fields["queue"], "default")
            XCTAssertEqual(start?.fields["attempt"], "1")
            XCTAssertEqual(start?.fields["tenant"], job.tenant)
            XCTAssertGreaterThanOrEqual(Int(start?.fields["latency_ms"] ?? "") ?? -1, 2000, "\(job.jid): \(String(describing: start))")
            XCTAssertEqual(start?.fields["trace_id"], i == 0 ? "4bf92f3577b34da6a3ce929d0e0e4736" : nil)

            let end = try XCTUnwrap(mine.first { $0.message == job.event }, "\(job.jid) \(job.event): \(mine)")
            let level = ["done": "info", "retry": "warning", "dead": "error"][job.event]
            XCTAssertEqual(end.level, level)
            XCTAssertEqual(end.fields["event"], job.event)
            XCTAssertEqual(end.fields["class"], job.jobClass)
            XCTAssertEqual(end.fields["queue"], "default")
            XCTAssertEqual(end.fields["attempt"], "1")
            XCTAssertEqual(end.fields["tenant"], job.tenant)
            XCTAssertNotNil(Int(end.fields["duration_ms"] ?? ""), "\(end)")
            XCTAssertEqual(end.fields["error"], job.event == "done" ? nil : "TestExecutor::Failure: boom")
            XCTAssertEqual(mine.filter { $0.message == job.event }.count, 1, "one end line for \(job.jid)")
        }
    }
}
