// The `/metrics` exposition: a golden text for a fixed set of calls on
// `CourierMetrics`, so a change of the registry behind it (names, labels,
// HELP/TYPE, escaping, number formatting) shows up here first.
//
// The golden text was recorded from the hand-written renderer (commit
// 24e5987) and changed only where swift-prometheus 2.x necessarily prints
// otherwise (docs/operations.md, "Metrics", says the same to operators):
//   * order: families, and the series in a family, come in the registry's
//     dictionary order, which differs from one process to the next. The
//     golden text keeps the old order; the comparison sorts both sides
//     (`canonical`), and `testWellFormed` checks what the order must keep;
//   * gauges are printed as Doubles: `courier_jobs_in_flight 3.0`, `… 1.0`
//     for the breaker state, `12.0` for a queue depth (was `3`, `1`, `12`);
//   * a family is printed only once it has a series: before the first job,
//     cancel, error… the labelled families have no HELP/TYPE lines at all
//     (see `goldenFresh`).
// Unchanged: names (no suffix added), label order and escaping, HELP texts,
// counters as integers, the buckets and their `le` text (`0.001`, `1.0`,
// `300.0`), the sum as Swift prints a Double.
// Issue 12 then added the tenant label (histograms by queue and tenant, no
// longer class), the latency histogram, retries/deaths by queue, the
// concurrency limit, and Redis errors by kind (so that family, labelled now,
// is absent from a fresh registry).
import Foundation
import Ops
import XCTest

/// The buckets as documented in docs/operations.md.
enum CourierMetricsBuckets {
    static let duration: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
    static let latency: [Double] = duration + [900, 3600]
}

final class MetricsExpositionTests: XCTestCase {
    /// The fixed calls: every `DispatchMetrics` method and the two that only
    /// `CourierService` makes, with label values that need escaping, a duration
    /// on a bucket bound, one past the last bucket and a job that never ran.
    static func recorded() -> CourierMetrics {
        let m = CourierMetrics()
        // 2^-10: exact sums
        m.jobFinished(queue: "default", jobClass: "NoopJob", outcome: "done", tenant: "acme", seconds: 0.0009765625, latency: 0.5)
        // on a bound: counted in le="0.25"
        m.jobFinished(queue: "default", jobClass: "NoopJob", outcome: "done", tenant: "acme", seconds: 0.25, latency: 2000)
        m.jobFinished(queue: "default", jobClass: "NoopJob", outcome: "retry", tenant: nil, seconds: 3, latency: nil)  // no enqueued_at: no latency
        // past the last buckets: only +Inf
        m.jobFinished(queue: "critical", jobClass: "Weird\"Job\\\nEnd", outcome: "dead", tenant: nil, seconds: 400, latency: 4000)
        m.jobFinished(queue: "default", jobClass: "unknown", outcome: "dead", tenant: "acme", seconds: nil, latency: nil)  // never ran: no duration
        m.setInFlight(3)
        m.setConcurrencyLimit(10)
        for state in ["open", "half_open", "closed", "open"] { m.breaker(state) }
        m.redisError("connection")
        m.redisError("connection")
        m.redisError("script")
        m.executorError("unavailable")
        m.executorError("http")
        m.executorError("http")
        m.recovered(4)
        m.recovered(0)
        m.limiterDeferred(3)
        m.limiterDeferred(0)
        for _ in 0..<5 { m.roundTrip() }
        m.exhaustedHook("ok")
        m.exhaustedHook("failed")
        m.cancel(reason: "timeout", result: "cancelled")
        m.cancel(reason: "shutdown", result: "not_running")
        m.queues(depth: ["default": 12, "low": 5], latency: ["default": 1.5, "low": 0.25], sets: ["retry": 2, "dead": 7])
        // The next sample replaces the last one: "low" is no longer configured.
        m.queues(depth: ["default": 12, "critical": 0], latency: ["default": 1.5, "critical": 0], sets: ["retry": 2, "schedule": 0, "dead": 7])
        return m
    }

    func testGoldenExposition() {
        let text = Self.recorded().render()
        XCTAssertEqual(canonical(text), canonical(Self.golden), "\n--- got ---\n\(text)")
    }

    func testFreshRegistry() {
        let text = CourierMetrics().render()
        XCTAssertEqual(canonical(text), canonical(Self.goldenFresh), "\n--- got ---\n\(text)")
    }

    /// What the text format needs beyond the set of lines: each family's lines
    /// together, HELP then TYPE then its samples; a histogram's buckets rising,
    /// then `+Inf`, `_sum`, `_count`; one newline at the end.
    func testWellFormed() throws {
        let text = Self.recorded().render()
        XCTAssertTrue(text.hasSuffix("\n"))
        var seen: Set<String> = []
        for block in families(text) {
            XCTAssertTrue(seen.insert(block.name).inserted, "\(block.name) printed in two places")
            XCTAssertTrue(block.lines.count > 1 && block.lines[1].hasPrefix("# TYPE \(block.name) "), "\(block.lines)")
            for sample in block.lines.dropFirst(2) { XCTAssertTrue(sample.hasPrefix(block.name), "\(sample) under \(block.name)") }
        }
        for (name, buckets, seriesCount) in [
            ("courier_job_duration_seconds", CourierMetricsBuckets.duration, 3), ("courier_job_latency_seconds", CourierMetricsBuckets.latency, 2),
        ] {
            let histogram = try XCTUnwrap(families(text).first { $0.name == name })
            let samples = Array(histogram.lines.dropFirst(2))
            let size = buckets.count + 3  // the buckets, +Inf, _sum, _count
            XCTAssertEqual(samples.count, seriesCount * size)
            for series in stride(from: 0, to: samples.count, by: size) {
                let bounds = samples[series..<(series + buckets.count)].map { line in
                    Double(line.components(separatedBy: "le=\"")[1].prefix { $0 != "\"" })!
                }
                XCTAssertEqual(bounds, buckets)
                XCTAssertTrue(samples[series + buckets.count].contains("le=\"+Inf\"}"))
                XCTAssertTrue(samples[series + buckets.count + 1].hasPrefix("\(name)_sum{"))
                XCTAssertTrue(samples[series + buckets.count + 2].hasPrefix("\(name)_count{"))
            }
        }
    }

    /// Tenants past the limit (or outside the allow-list) and classes past 200 are counted as `other`.
    func testTenantAndClassLabelsAreBounded() throws {
        let limited = CourierMetrics(labels: MetricsLabels(tenants: .firstSeen(limit: 2), classLimit: 3))
        for i in 0..<10 {
            limited.jobFinished(queue: "q", jobClass: "Job\(i % 5)", outcome: "done", tenant: "t\(i)", seconds: 0.01, latency: 0.1)
        }
        limited.jobFinished(queue: "q", jobClass: "Job0", outcome: "done", tenant: "t1", seconds: 0.01, latency: nil)  // seen: keeps its label
        limited.jobFinished(queue: "q", jobClass: "Job0", outcome: "done", tenant: nil, seconds: 0.01, latency: nil)
        let text = limited.render()
        let tenants = Set(labelValues(text, family: "courier_jobs_total", label: "tenant"))
        XCTAssertEqual(tenants, ["t0", "t1", "other", "none"])
        XCTAssertEqual(Set(labelValues(text, family: "courier_jobs_total", label: "class")), ["Job0", "Job1", "Job2", "other"])
        XCTAssertEqual(Set(labelValues(text, family: "courier_job_latency_seconds_count", label: "tenant")), ["t0", "t1", "other"])
        XCTAssertTrue(text.contains(#"courier_job_duration_seconds_count{queue="q",tenant="other"} 8"#), text)
        XCTAssertTrue(text.contains(#"courier_job_duration_seconds_count{queue="q",tenant="t1"} 2"#), text)

        let allowed = CourierMetrics(labels: MetricsLabels(tenants: .allow(["acme", "globex"])))
        for tenant in ["acme", "initech", "globex", "acme", "umbrella"] {
            allowed.jobFinished(queue: "q", jobClass: "J", outcome: "retry", tenant: tenant, seconds: 1, latency: 1)
        }
        let allowedText = allowed.render()
        XCTAssertTrue(allowedText.contains(#"courier_jobs_total{queue="q",class="J",outcome="retry",tenant="acme"} 2"#), allowedText)
        XCTAssertTrue(allowedText.contains(#"courier_jobs_total{queue="q",class="J",outcome="retry",tenant="other"} 2"#), allowedText)
        XCTAssertTrue(allowedText.contains(#"courier_retries_scheduled_total{queue="q"} 5"#), allowedText)

        var bound = LabelBound(.firstSeen(limit: 0))
        XCTAssertEqual(bound.label("a"), "other")
    }

    /// Python's `prometheus_client` (the reference parser) reads the text, with
    /// the label values unescaped. Skipped when python3 or the package is
    /// missing and `pip install prometheus-client` cannot add it.
    func testPrometheusClientParsesIt() throws {
        guard let python = try? which("python3") else { throw XCTSkip("no python3") }
        let probe = "import prometheus_client.parser"
        if run(python, ["-c", probe]).status != 0,
            run(python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "prometheus-client"]).status != 0
                || run(python, ["-c", probe]).status != 0
        {
            throw XCTSkip("prometheus_client is not installed and pip could not install it")
        }
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for f in text_string_to_metric_families(sys.stdin.read()):
                out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
            print(json.dumps(out))
            """
        let result = run(python, ["-c", script], input: Self.recorded().render())
        XCTAssertEqual(result.status, 0, result.output)
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: [String: Any]])
        // The parser names a counter's family without `_total`.
        XCTAssertEqual(
            Set(parsed.keys),
            [
                "courier_jobs", "courier_job_duration_seconds", "courier_job_latency_seconds", "courier_jobs_in_flight",
                "courier_concurrency_limit", "courier_retries_scheduled", "courier_jobs_dead", "courier_breaker_state",
                "courier_breaker_transitions", "courier_redis_errors", "courier_executor_errors", "courier_queue_depth",
                "courier_queue_latency_seconds", "courier_set_size", "courier_recovered_jobs", "courier_redis_round_trips",
                "courier_exhausted_hooks", "courier_cancels", "courier_limiter_deferred",
            ])
        XCTAssertEqual(parsed["courier_jobs"]?["type"] as? String, "counter")
        XCTAssertEqual(parsed["courier_job_duration_seconds"]?["type"] as? String, "histogram")
        XCTAssertEqual(parsed["courier_queue_depth"]?["type"] as? String, "gauge")
        let jobs = try XCTUnwrap(parsed["courier_jobs"]?["samples"] as? [[Any]])
        let weird = try XCTUnwrap(jobs.first { ($0[1] as? [String: String])?["queue"] == "critical" })
        XCTAssertEqual(weird[1] as? [String: String], ["queue": "critical", "class": "Weird\"Job\\\nEnd", "outcome": "dead", "tenant": "none"])
        XCTAssertEqual(weird[2] as? Double, 1)
        let histogram = try XCTUnwrap(parsed["courier_job_duration_seconds"]?["samples"] as? [[Any]])
        let noopSum = histogram.first {
            ($0[0] as? String) == "courier_job_duration_seconds_sum" && ($0[1] as? [String: String])?["tenant"] == "acme"
        }
        XCTAssertEqual(noopSum?[2] as? Double, 0.2509765625)
        XCTAssertEqual(histogram.count, 3 * 19)
    }

    // MARK: - Helpers

    /// The values of `label` on the samples named `family` (a prefix: `_count` etc. narrow it).
    private func labelValues(_ text: String, family: String, label: String) -> [String] {
        text.split(separator: "\n").filter { $0.hasPrefix(family + "{") }.compactMap { line in
            line.components(separatedBy: "\(label)=\"").dropFirst().first.map { String($0.prefix { $0 != "\"" }) }
        }
    }

    /// Each family's block (from its `# HELP` line), in printed order.
    private func families(_ text: String) -> [(name: String, lines: [String])] {
        var blocks: [(name: String, lines: [String])] = []
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("# HELP ") {
                blocks.append((String(line.split(separator: " ")[2]), [line]))
            } else if !blocks.isEmpty {
                blocks[blocks.count - 1].lines.append(line)
            }
        }
        return blocks
    }

    /// The text with families sorted by name and each family's samples sorted:
    /// equal for two expositions that differ only in order.
    private func canonical(_ text: String) -> String {
        families(text).sorted { $0.name < $1.name }
            .map { ($0.lines.prefix(2) + $0.lines.dropFirst(2).sorted()).joined(separator: "\n") }
            .joined(separator: "\n")
    }

    /// Runs a program to its end: exit status and standard output (stderr is discarded).
    private func run(_ path: String, _ arguments: [String], input: String = "") -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return (-1, "\(error)") }
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try? stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    static let golden = #"""

        # HELP courier_exhausted_hooks_total Calls of the executor's /v1/jobs/exhausted, by result (ok, retried, failed).

        # TYPE courier_exhausted_hooks_total counter

        courier_exhausted_hooks_total{result="failed"} 1

        courier_exhausted_hooks_total{result="ok"} 1

        courier_exhausted_hooks_total{result="retried"} 0

        # HELP courier_cancels_total Cancels of running jobs, by reason (shutdown, timeout, cancel) and result (cancelled, not_running, unsupported, failed).

        # TYPE courier_cancels_total counter

        courier_cancels_total{reason="shutdown",result="failed"} 0

        courier_cancels_total{reason="shutdown",result="cancelled"} 0

        courier_cancels_total{reason="shutdown",result="not_running"} 1

        courier_cancels_total{reason="timeout",result="failed"} 0

        courier_cancels_total{reason="timeout",result="not_running"} 0

        courier_cancels_total{reason="cancel",result="cancelled"} 0

        courier_cancels_total{reason="cancel",result="unsupported"} 0

        courier_cancels_total{reason="timeout",result="unsupported"} 0

        courier_cancels_total{reason="cancel",result="failed"} 0

        courier_cancels_total{reason="timeout",result="cancelled"} 1

        courier_cancels_total{reason="shutdown",result="unsupported"} 0

        courier_cancels_total{reason="cancel",result="not_running"} 0

        # HELP courier_recovered_jobs_total Jobs pushed back from processes that died.

        # TYPE courier_recovered_jobs_total counter

        courier_recovered_jobs_total 4

        # HELP courier_redis_round_trips_total Fetch/acknowledge round trips to Redis.

        # TYPE courier_redis_round_trips_total counter

        courier_redis_round_trips_total 5

        # HELP courier_limiter_deferred_total Jobs of a class over its cluster-wide limiter, moved to the schedule set for later.

        # TYPE courier_limiter_deferred_total counter

        courier_limiter_deferred_total 3

        # HELP courier_breaker_transitions_total Circuit breaker transitions, by new state.

        # TYPE courier_breaker_transitions_total counter

        courier_breaker_transitions_total{to="open"} 2

        courier_breaker_transitions_total{to="half_open"} 1

        courier_breaker_transitions_total{to="closed"} 1

        # HELP courier_redis_errors_total Failed Redis calls (round trips, heartbeats, scheduler, recovery), by kind.

        # TYPE courier_redis_errors_total counter

        courier_redis_errors_total{kind="reply"} 0

        courier_redis_errors_total{kind="timeout"} 0

        courier_redis_errors_total{kind="other"} 0

        courier_redis_errors_total{kind="connection"} 2

        courier_redis_errors_total{kind="script"} 1

        # HELP courier_executor_errors_total Deliveries the executor did not answer properly, by kind.

        # TYPE courier_executor_errors_total counter

        courier_executor_errors_total{kind="timeout"} 0

        courier_executor_errors_total{kind="unavailable"} 1

        courier_executor_errors_total{kind="http"} 2

        # HELP courier_jobs_dead_total Jobs put in the dead set, by queue.

        # TYPE courier_jobs_dead_total counter

        courier_jobs_dead_total{queue="critical"} 1

        courier_jobs_dead_total{queue="default"} 1

        # HELP courier_job_duration_seconds Time from POST to the executor's answer, by queue and tenant.

        # TYPE courier_job_duration_seconds histogram

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.001"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.0025"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.005"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.01"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.025"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.05"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.1"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.25"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="0.5"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="1.0"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="2.5"} 0

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="5.0"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="10.0"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="30.0"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="60.0"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="300.0"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="none",le="+Inf"} 1

        courier_job_duration_seconds_sum{queue="default",tenant="none"} 3.0

        courier_job_duration_seconds_count{queue="default",tenant="none"} 1

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.001"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.0025"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.005"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.01"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.025"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.05"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.1"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.25"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="0.5"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="1.0"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="2.5"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="5.0"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="10.0"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="30.0"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="60.0"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="300.0"} 0

        courier_job_duration_seconds_bucket{queue="critical",tenant="none",le="+Inf"} 1

        courier_job_duration_seconds_sum{queue="critical",tenant="none"} 400.0

        courier_job_duration_seconds_count{queue="critical",tenant="none"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.001"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.0025"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.005"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.01"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.025"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.05"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.1"} 1

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.25"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="0.5"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="1.0"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="2.5"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="5.0"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="10.0"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="30.0"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="60.0"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="300.0"} 2

        courier_job_duration_seconds_bucket{queue="default",tenant="acme",le="+Inf"} 2

        courier_job_duration_seconds_sum{queue="default",tenant="acme"} 0.2509765625

        courier_job_duration_seconds_count{queue="default",tenant="acme"} 2

        # HELP courier_breaker_state 1 for the circuit breaker's current state.

        # TYPE courier_breaker_state gauge

        courier_breaker_state{state="half_open"} 0.0

        courier_breaker_state{state="open"} 1.0

        courier_breaker_state{state="closed"} 0.0

        # HELP courier_retries_scheduled_total Failed jobs put in the retry set, by queue.

        # TYPE courier_retries_scheduled_total counter

        courier_retries_scheduled_total{queue="default"} 1

        # HELP courier_job_latency_seconds Time from enqueued_at to the job's delivery to the executor, by queue and tenant.

        # TYPE courier_job_latency_seconds histogram

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.001"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.0025"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.005"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.01"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.025"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.05"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.1"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.25"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="0.5"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="1.0"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="2.5"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="5.0"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="10.0"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="30.0"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="60.0"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="300.0"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="900.0"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="3600.0"} 0

        courier_job_latency_seconds_bucket{queue="critical",tenant="none",le="+Inf"} 1

        courier_job_latency_seconds_sum{queue="critical",tenant="none"} 4000.0

        courier_job_latency_seconds_count{queue="critical",tenant="none"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.001"} 0

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.0025"} 0

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.005"} 0

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.01"} 0

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.025"} 0

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.05"} 0

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.1"} 0

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.25"} 0

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="0.5"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="1.0"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="2.5"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="5.0"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="10.0"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="30.0"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="60.0"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="300.0"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="900.0"} 1

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="3600.0"} 2

        courier_job_latency_seconds_bucket{queue="default",tenant="acme",le="+Inf"} 2

        courier_job_latency_seconds_sum{queue="default",tenant="acme"} 2000.5

        courier_job_latency_seconds_count{queue="default",tenant="acme"} 2

        # HELP courier_jobs_in_flight Jobs fetched and not yet acknowledged.

        # TYPE courier_jobs_in_flight gauge

        courier_jobs_in_flight 3.0

        # HELP courier_jobs_total Jobs finished, by queue, class, outcome (done, retry, dead, discarded, failed, requeued, cancelled) and tenant.

        # TYPE courier_jobs_total counter

        courier_jobs_total{queue="default",class="NoopJob",outcome="done",tenant="acme"} 2

        courier_jobs_total{queue="default",class="NoopJob",outcome="retry",tenant="none"} 1

        courier_jobs_total{queue="critical",class="Weird\"Job\\\nEnd",outcome="dead",tenant="none"} 1

        courier_jobs_total{queue="default",class="unknown",outcome="dead",tenant="acme"} 1

        # HELP courier_concurrency_limit Most jobs this process holds at once (-c).

        # TYPE courier_concurrency_limit gauge

        courier_concurrency_limit 10.0

        # HELP courier_queue_latency_seconds Age of the oldest job in each queue (sampled at each heartbeat).

        # TYPE courier_queue_latency_seconds gauge

        courier_queue_latency_seconds{queue="critical"} 0.0

        courier_queue_latency_seconds{queue="default"} 1.5

        # HELP courier_set_size Entries in Sidekiq's retry, schedule and dead sets (sampled at each heartbeat).

        # TYPE courier_set_size gauge

        courier_set_size{set="retry"} 2.0

        courier_set_size{set="dead"} 7.0

        courier_set_size{set="schedule"} 0.0

        # HELP courier_queue_depth Jobs waiting in each configured queue (sampled at each heartbeat).

        # TYPE courier_queue_depth gauge

        courier_queue_depth{queue="default"} 12.0

        courier_queue_depth{queue="critical"} 0.0

        """#

    static let goldenFresh = #"""

        # HELP courier_redis_round_trips_total Fetch/acknowledge round trips to Redis.

        # TYPE courier_redis_round_trips_total counter

        courier_redis_round_trips_total 0

        # HELP courier_limiter_deferred_total Jobs of a class over its cluster-wide limiter, moved to the schedule set for later.

        # TYPE courier_limiter_deferred_total counter

        courier_limiter_deferred_total 0

        # HELP courier_breaker_state 1 for the circuit breaker's current state.

        # TYPE courier_breaker_state gauge

        courier_breaker_state{state="half_open"} 0.0

        courier_breaker_state{state="closed"} 1.0

        courier_breaker_state{state="open"} 0.0

        # HELP courier_executor_errors_total Deliveries the executor did not answer properly, by kind.

        # TYPE courier_executor_errors_total counter

        courier_executor_errors_total{kind="http"} 0

        courier_executor_errors_total{kind="unavailable"} 0

        courier_executor_errors_total{kind="timeout"} 0

        # HELP courier_cancels_total Cancels of running jobs, by reason (shutdown, timeout, cancel) and result (cancelled, not_running, unsupported, failed).

        # TYPE courier_cancels_total counter

        courier_cancels_total{reason="timeout",result="unsupported"} 0

        courier_cancels_total{reason="shutdown",result="cancelled"} 0

        courier_cancels_total{reason="timeout",result="not_running"} 0

        courier_cancels_total{reason="shutdown",result="failed"} 0

        courier_cancels_total{reason="shutdown",result="unsupported"} 0

        courier_cancels_total{reason="timeout",result="cancelled"} 0

        courier_cancels_total{reason="cancel",result="not_running"} 0

        courier_cancels_total{reason="cancel",result="cancelled"} 0

        courier_cancels_total{reason="cancel",result="unsupported"} 0

        courier_cancels_total{reason="shutdown",result="not_running"} 0

        courier_cancels_total{reason="timeout",result="failed"} 0

        courier_cancels_total{reason="cancel",result="failed"} 0

        # HELP courier_redis_errors_total Failed Redis calls (round trips, heartbeats, scheduler, recovery), by kind.

        # TYPE courier_redis_errors_total counter

        courier_redis_errors_total{kind="reply"} 0

        courier_redis_errors_total{kind="timeout"} 0

        courier_redis_errors_total{kind="other"} 0

        courier_redis_errors_total{kind="connection"} 0

        courier_redis_errors_total{kind="script"} 0

        # HELP courier_concurrency_limit Most jobs this process holds at once (-c).

        # TYPE courier_concurrency_limit gauge

        courier_concurrency_limit 0.0

        # HELP courier_breaker_transitions_total Circuit breaker transitions, by new state.

        # TYPE courier_breaker_transitions_total counter

        courier_breaker_transitions_total{to="open"} 0

        courier_breaker_transitions_total{to="half_open"} 0

        courier_breaker_transitions_total{to="closed"} 0

        # HELP courier_exhausted_hooks_total Calls of the executor's /v1/jobs/exhausted, by result (ok, retried, failed).

        # TYPE courier_exhausted_hooks_total counter

        courier_exhausted_hooks_total{result="ok"} 0

        courier_exhausted_hooks_total{result="retried"} 0

        courier_exhausted_hooks_total{result="failed"} 0

        # HELP courier_jobs_in_flight Jobs fetched and not yet acknowledged.

        # TYPE courier_jobs_in_flight gauge

        courier_jobs_in_flight 0.0

        # HELP courier_recovered_jobs_total Jobs pushed back from processes that died.

        # TYPE courier_recovered_jobs_total counter

        courier_recovered_jobs_total 0

        """#
}
