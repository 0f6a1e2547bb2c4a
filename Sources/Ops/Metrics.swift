import JobDispatch
import Synchronization

// One registry shared by the dispatcher and `/metrics`. Metric names live
// here and nowhere else. Rendered in the Prometheus text format.

public final class CourierMetrics: DispatchMetrics {
    static let durationBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

    private struct Histogram {
        var counts = [Int](repeating: 0, count: CourierMetrics.durationBuckets.count)
        var sum = 0.0
        var count = 0

        mutating func record(_ seconds: Double) {
            if let bucket = CourierMetrics.durationBuckets.firstIndex(where: { seconds <= $0 }) { counts[bucket] += 1 }
            sum += seconds
            count += 1
        }
    }

    /// Label values; a struct key, so counting a job allocates nothing.
    private struct Labels: Hashable, Comparable {
        var queue: String
        var jobClass: String
        var outcome = ""
        static func < (a: Labels, b: Labels) -> Bool { (a.queue, a.jobClass, a.outcome) < (b.queue, b.jobClass, b.outcome) }
    }

    private struct State: ~Copyable {
        var jobs: [Labels: Int] = [:]
        var durations: [Labels: Histogram] = [:]  // outcome left empty
        var inFlight = 0
        var breakerState = "closed"
        var breakerTransitions: [String: Int] = [:]
        var redisErrors = 0
        var executorErrors: [String: Int] = [:]
        var queueDepth: [String: Int] = [:]
        var queueLatency: [String: Double] = [:]
        var setSizes: [String: Int] = [:]
        var recovered = 0
        var roundTrips = 0
        var exhaustedHooks: [String: Int] = [:]
        var cancels: [CancelLabels: Int] = [:]
    }

    private struct CancelLabels: Hashable, Comparable {
        var reason: String
        var result: String
        static func < (a: CancelLabels, b: CancelLabels) -> Bool { (a.reason, a.result) < (b.reason, b.result) }
    }

    private let state = Mutex(State())

    public init() {}

    public func jobFinished(queue: String, jobClass: String, outcome: String, seconds: Double?) {
        state.withLock { s in
            s.jobs[Labels(queue: queue, jobClass: jobClass, outcome: outcome), default: 0] += 1
            guard let seconds else { return }
            s.durations[Labels(queue: queue, jobClass: jobClass), default: Histogram()].record(seconds)  // in place: no copy of the counts
        }
    }

    public func setInFlight(_ n: Int) { state.withLock { $0.inFlight = n } }
    public func breaker(_ to: String) { state.withLock { $0.breakerState = to; $0.breakerTransitions[to, default: 0] += 1 } }
    public func redisError() { state.withLock { $0.redisErrors += 1 } }
    public func executorError(_ kind: String) { state.withLock { $0.executorErrors[kind, default: 0] += 1 } }
    public func recovered(_ n: Int) { state.withLock { $0.recovered += n } }
    public func roundTrip() { state.withLock { $0.roundTrips += 1 } }
    public func exhaustedHook(_ result: String) { state.withLock { $0.exhaustedHooks[result, default: 0] += 1 } }
    public func cancel(reason: String, result: String) { state.withLock { $0.cancels[CancelLabels(reason: reason, result: result), default: 0] += 1 } }
    public func queues(depth: [String: Int], latency: [String: Double], sets: [String: Int]) {
        state.withLock { $0.queueDepth = depth; $0.queueLatency = latency; $0.setSizes = sets }
    }

    /// The Prometheus text exposition.
    public func render() -> String {
        state.withLock { s in
            var out = ""
            func header(_ name: String, _ type: String, _ help: String) {
                out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            }
            header("courier_jobs_total", "counter", "Jobs finished, by queue, class and outcome (done, retry, dead, discarded, failed, requeued, cancelled).")
            for (labels, n) in s.jobs.sorted(by: { $0.key < $1.key }) {
                out += "courier_jobs_total{queue=\(q(labels.queue)),class=\(q(labels.jobClass)),outcome=\(q(labels.outcome))} \(n)\n"
            }
            header("courier_job_duration_seconds", "histogram", "Time from POST to the executor's answer.")
            for (labels, h) in s.durations.sorted(by: { $0.key < $1.key }) {
                let l = "queue=\(q(labels.queue)),class=\(q(labels.jobClass))"
                var cumulative = 0
                for (i, bound) in Self.durationBuckets.enumerated() {
                    cumulative += h.counts[i]
                    out += "courier_job_duration_seconds_bucket{\(l),le=\"\(bound)\"} \(cumulative)\n"
                }
                out += "courier_job_duration_seconds_bucket{\(l),le=\"+Inf\"} \(h.count)\n"
                out += "courier_job_duration_seconds_sum{\(l)} \(h.sum)\n"
                out += "courier_job_duration_seconds_count{\(l)} \(h.count)\n"
            }
            header("courier_jobs_in_flight", "gauge", "Jobs fetched and not yet acknowledged.")
            out += "courier_jobs_in_flight \(s.inFlight)\n"
            header("courier_breaker_state", "gauge", "1 for the circuit breaker's current state.")
            for name in ["closed", "open", "half_open"] {
                out += "courier_breaker_state{state=\"\(name)\"} \(s.breakerState == name ? 1 : 0)\n"
            }
            header("courier_breaker_transitions_total", "counter", "Circuit breaker transitions, by new state.")
            for (to, n) in s.breakerTransitions.sorted(by: { $0.key < $1.key }) {
                out += "courier_breaker_transitions_total{to=\(q(to))} \(n)\n"
            }
            header("courier_redis_errors_total", "counter", "Failed Redis round trips.")
            out += "courier_redis_errors_total \(s.redisErrors)\n"
            header("courier_executor_errors_total", "counter", "Deliveries the executor did not answer properly, by kind.")
            for (kind, n) in s.executorErrors.sorted(by: { $0.key < $1.key }) {
                out += "courier_executor_errors_total{kind=\(q(kind))} \(n)\n"
            }
            header("courier_queue_depth", "gauge", "Jobs waiting in each configured queue (sampled at each heartbeat).")
            for (queue, n) in s.queueDepth.sorted(by: { $0.key < $1.key }) { out += "courier_queue_depth{queue=\(q(queue))} \(n)\n" }
            header("courier_queue_latency_seconds", "gauge", "Age of the oldest job in each queue (sampled at each heartbeat).")
            for (queue, v) in s.queueLatency.sorted(by: { $0.key < $1.key }) { out += "courier_queue_latency_seconds{queue=\(q(queue))} \(v)\n" }
            header("courier_set_size", "gauge", "Entries in Sidekiq's retry, schedule and dead sets (sampled at each heartbeat).")
            for (set, n) in s.setSizes.sorted(by: { $0.key < $1.key }) { out += "courier_set_size{set=\(q(set))} \(n)\n" }
            header("courier_recovered_jobs_total", "counter", "Jobs pushed back from processes that died.")
            out += "courier_recovered_jobs_total \(s.recovered)\n"
            header("courier_redis_round_trips_total", "counter", "Fetch/acknowledge round trips to Redis.")
            out += "courier_redis_round_trips_total \(s.roundTrips)\n"
            header("courier_exhausted_hooks_total", "counter", "Calls of the executor's /v1/jobs/exhausted, by result (ok, retried, failed).")
            for (result, n) in s.exhaustedHooks.sorted(by: { $0.key < $1.key }) { out += "courier_exhausted_hooks_total{result=\(q(result))} \(n)\n" }
            header("courier_cancels_total", "counter",
                   "Cancels of running jobs, by reason (shutdown, timeout, cancel) and result (cancelled, not_running, unsupported, failed).")
            for (labels, n) in s.cancels.sorted(by: { $0.key < $1.key }) {
                out += "courier_cancels_total{reason=\(q(labels.reason)),result=\(q(labels.result))} \(n)\n"
            }
            return out
        }
    }
}

/// A quoted, escaped Prometheus label value.
private func q(_ value: String) -> String {
    var out = "\""
    for c in value {
        switch c {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        default: out.append(c)
        }
    }
    return out + "\""
}
