// One registry shared by the dispatcher and `/metrics`. Metric names, labels
// and help texts live here and nowhere else (docs/operations.md lists them).
//
// The registry is swift-prometheus's `PrometheusCollectorRegistry`, used
// directly: swift-metrics' global `MetricsSystem` is not bootstrapped, so
// nothing else in the process reports into it, and two couriers in one test
// process keep counters of their own.
//
// The hot path is `jobFinished`, called once per job. The series objects
// (a counter per queue, class and outcome; a histogram per queue and class)
// are cached in dictionaries with struct keys under one `Mutex`: once a series
// exists, counting a job hashes three strings, bumps an atomic counter and
// records into the histogram (its own lock) without allocating. A series is
// registered once, the first time its labels are seen.
import JobDispatch
import Prometheus
import Synchronization

/// Courier's Prometheus metrics: implements the dispatcher's `DispatchMetrics`
/// and renders the text exposition served at `/metrics`.
public final class CourierMetrics: DispatchMetrics {
    /// Buckets of `courier_job_duration_seconds`, in seconds (1 ms … 300 s).
    static let durationBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
    /// The states `courier_breaker_state` has a series for.
    static let breakerStates = ["closed", "open", "half_open"]

    /// A metric family's name and help text.
    private struct Family: Sendable {
        let name: String
        let help: String
        /// The whole name is given as `metricName` (no namespace or unit to join), so it is printed as written.
        var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: name, unitName: "", helpText: help) }

        private init(_ name: String, _ help: String) {
            self.name = name
            self.help = help
        }

        static let jobs = Family(
            "courier_jobs_total", "Jobs finished, by queue, class and outcome (done, retry, dead, discarded, failed, requeued, cancelled).")
        static let duration = Family("courier_job_duration_seconds", "Time from POST to the executor's answer.")
        static let inFlight = Family("courier_jobs_in_flight", "Jobs fetched and not yet acknowledged.")
        static let breakerState = Family("courier_breaker_state", "1 for the circuit breaker's current state.")
        static let breakerTransitions = Family("courier_breaker_transitions_total", "Circuit breaker transitions, by new state.")
        static let redisErrors = Family("courier_redis_errors_total", "Failed Redis round trips.")
        static let executorErrors = Family("courier_executor_errors_total", "Deliveries the executor did not answer properly, by kind.")
        static let queueDepth = Family("courier_queue_depth", "Jobs waiting in each configured queue (sampled at each heartbeat).")
        static let queueLatency = Family("courier_queue_latency_seconds", "Age of the oldest job in each queue (sampled at each heartbeat).")
        static let setSize = Family("courier_set_size", "Entries in Sidekiq's retry, schedule and dead sets (sampled at each heartbeat).")
        static let recovered = Family("courier_recovered_jobs_total", "Jobs pushed back from processes that died.")
        static let roundTrips = Family("courier_redis_round_trips_total", "Fetch/acknowledge round trips to Redis.")
        static let exhaustedHooks = Family(
            "courier_exhausted_hooks_total", "Calls of the executor's /v1/jobs/exhausted, by result (ok, retried, failed).")
        static let cancels = Family(
            "courier_cancels_total",
            "Cancels of running jobs, by reason (shutdown, timeout, cancel) and result (cancelled, not_running, unsupported, failed).")
    }

    /// A job's labels; a struct key, so finding its series allocates nothing.
    private struct JobLabels: Hashable {
        var queue: String
        var jobClass: String
        var outcome: String
    }

    private struct DurationLabels: Hashable {
        var queue: String
        var jobClass: String
    }

    private struct CancelLabels: Hashable {
        var reason: String
        var result: String
    }

    /// The labelled series registered so far, by label values.
    private struct Series: ~Copyable {
        var jobs: [JobLabels: Counter] = [:]
        var durations: [DurationLabels: ValueHistogram] = [:]
        var breakerTransitions: [String: Counter] = [:]
        var executorErrors: [String: Counter] = [:]
        var exhaustedHooks: [String: Counter] = [:]
        var cancels: [CancelLabels: Counter] = [:]
        var queueDepth: [String: Gauge] = [:]
        var queueLatency: [String: Gauge] = [:]
        var setSizes: [String: Gauge] = [:]
    }

    private let registry = PrometheusCollectorRegistry()
    private let series = Mutex(Series())
    private let inFlight: Gauge
    private let redisErrors: Counter
    private let recoveredJobs: Counter
    private let roundTrips: Counter
    private let breakerGauges: [(state: String, gauge: Gauge)]
    /// Held while the breaker's three gauges change and while rendering, so a
    /// scrape never sees two states (or none) at 1.
    private let breakerLock = Mutex(())

    /// A registry with the unlabelled series at 0 and the breaker closed.
    public init() {
        inFlight = registry.makeGauge(descriptor: Family.inFlight.descriptor)
        let registry = registry
        breakerGauges = Self.breakerStates.map { ($0, registry.makeGauge(descriptor: Family.breakerState.descriptor, labels: [("state", $0)])) }
        breakerGauges[0].gauge.set(to: 1)
        redisErrors = registry.makeCounter(descriptor: Family.redisErrors.descriptor)
        recoveredJobs = registry.makeCounter(descriptor: Family.recovered.descriptor)
        roundTrips = registry.makeCounter(descriptor: Family.roundTrips.descriptor)
    }

    /// Counts a finished job in `courier_jobs_total` and, if it ran, its time in `courier_job_duration_seconds`.
    public func jobFinished(queue: String, jobClass: String, outcome: String, seconds: Double?) {
        series.withLock { s in
            let key = JobLabels(queue: queue, jobClass: jobClass, outcome: outcome)
            if let counter = s.jobs[key] {
                counter.increment()
            } else {
                let counter = registry.makeCounter(
                    descriptor: Family.jobs.descriptor, labels: [("queue", queue), ("class", jobClass), ("outcome", outcome)])
                s.jobs[key] = counter
                counter.increment()
            }
            guard let seconds else { return }
            let durationKey = DurationLabels(queue: queue, jobClass: jobClass)
            if let histogram = s.durations[durationKey] {
                histogram.record(seconds)
            } else {
                let histogram = registry.makeValueHistogram(
                    descriptor: Family.duration.descriptor, labels: [("queue", queue), ("class", jobClass)],
                    buckets: Self.durationBuckets)
                s.durations[durationKey] = histogram
                histogram.record(seconds)
            }
        }
    }

    /// `courier_jobs_in_flight`: jobs held now.
    public func setInFlight(_ n: Int) { inFlight.set(to: Double(n)) }

    /// The breaker moved to `to`: `courier_breaker_state` and a transition counted.
    public func breaker(_ to: String) {
        breakerLock.withLock { _ in
            for (state, gauge) in breakerGauges { gauge.set(to: state == to ? 1 : 0) }
        }
        series.withLock { increment(&$0.breakerTransitions, to, Family.breakerTransitions, label: "to") }
    }

    /// A failed Redis round trip.
    public func redisError() { redisErrors.increment() }
    /// An executor problem of `kind` (unavailable, http, timeout).
    public func executorError(_ kind: String) {
        series.withLock { increment(&$0.executorErrors, kind, Family.executorErrors, label: "kind") }
    }

    /// `n` jobs pushed back from processes that died (`CourierService`'s recovery).
    public func recovered(_ n: Int) {
        if n > 0 { recoveredJobs.increment(by: Int64(n)) }
    }

    /// A fetch/acknowledge round trip to Redis.
    public func roundTrip() { roundTrips.increment() }
    /// An exhausted-hook call ended with `result` (ok, retried, failed).
    public func exhaustedHook(_ result: String) {
        series.withLock { increment(&$0.exhaustedHooks, result, Family.exhaustedHooks, label: "result") }
    }

    /// A cancel of a running job, by why it was sent and what came of it.
    public func cancel(reason: String, result: String) {
        series.withLock { s in
            let key = CancelLabels(reason: reason, result: result)
            if let counter = s.cancels[key] { return counter.increment() }
            let counter = registry.makeCounter(descriptor: Family.cancels.descriptor, labels: [("reason", reason), ("result", result)])
            s.cancels[key] = counter
            counter.increment()
        }
    }

    /// The heartbeat's sample of queue depths and latencies and of the sizes of
    /// the retry, schedule and dead sets. Replaces the previous sample: a queue
    /// or set missing from it has its series removed.
    public func queues(depth: [String: Int], latency: [String: Double], sets: [String: Int]) {
        series.withLock { s in
            replace(&s.queueDepth, with: depth.mapValues(Double.init), Family.queueDepth, label: "queue")
            replace(&s.queueLatency, with: latency, Family.queueLatency, label: "queue")
            replace(&s.setSizes, with: sets.mapValues(Double.init), Family.setSize, label: "set")
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    public func render() -> String {
        breakerLock.withLock { _ in registry.emitToString() }
    }

    // MARK: - Series bookkeeping (called with `series` held)

    /// Increments the counter for one label value of a family with one label.
    private func increment(_ counters: inout [String: Counter], _ value: String, _ family: Family, label: String) {
        if let counter = counters[value] { return counter.increment() }
        let counter = registry.makeCounter(descriptor: family.descriptor, labels: [(label, value)])
        counters[value] = counter
        counter.increment()
    }

    /// Sets each sampled gauge; unregisters those the sample no longer has.
    private func replace(_ gauges: inout [String: Gauge], with sample: [String: Double], _ family: Family, label: String) {
        for (name, gauge) in gauges where sample[name] == nil {
            registry.unregisterGauge(gauge)
            gauges[name] = nil
        }
        for (name, value) in sample {
            if let gauge = gauges[name] {
                gauge.set(to: value)
            } else {
                let gauge = registry.makeGauge(descriptor: family.descriptor, labels: [(label, name)])
                gauges[name] = gauge
                gauge.set(to: value)
            }
        }
    }
}
