// One registry shared by the dispatcher and `/metrics`. Metric names, labels
// and help texts live here and nowhere else (docs/operations.md lists them).
//
// The registry is swift-prometheus's `PrometheusCollectorRegistry`, used
// directly: swift-metrics' global `MetricsSystem` is not bootstrapped, so
// nothing else in the process reports into it, and two couriers in one test
// process keep counters of their own.
//
// The hot path is `jobFinished`, called once per job. The series objects
// (a counter per queue, class, outcome and tenant; histograms per queue and
// tenant; retries and deaths per queue) are cached in dictionaries with
// struct keys under one `Mutex`, with the label bounds (LabelBound): once a
// series exists, counting a job hashes a few strings, bumps atomic counters
// and records into two histograms (each its own lock) without allocating.
// A series is registered once, the first time its labels are seen.
import JobDispatch
import Prometheus
import Synchronization

/// How many values the `tenant` and `class` labels may take (`--metrics-tenants`, `--metrics-tenant-limit`).
public struct MetricsLabels: Sendable, Equatable {
    /// An allow-list, or the first N tenants seen (default 50); the rest are `other`.
    public var tenants: LabelBoundRule = .firstSeen(limit: 50)
    /// The first N job classes seen get their own `class` value (200); later ones are `other`.
    public var classLimit = 200
    public init(tenants: LabelBoundRule = .firstSeen(limit: 50), classLimit: Int = 200) {
        self.tenants = tenants
        self.classLimit = classLimit
    }
}

/// Courier's Prometheus metrics: implements the dispatcher's `DispatchMetrics`
/// and renders the text exposition served at `/metrics`.
public final class CourierMetrics: DispatchMetrics {
    /// Buckets of `courier_job_duration_seconds`, in seconds (1 ms … 300 s).
    static let durationBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
    /// Buckets of `courier_job_latency_seconds` (enqueue → start), in seconds (1 ms … 1 h).
    static let latencyBuckets: [Double] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
    ]
    /// The `tenant` label of a job that has no tenant.
    public static let noTenant = "none"
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
            "courier_jobs_total",
            "Jobs finished, by queue, class, outcome (done, retry, dead, discarded, failed, requeued, cancelled) and tenant.")
        static let duration = Family("courier_job_duration_seconds", "Time from POST to the executor's answer, by queue and tenant.")
        static let latency = Family(
            "courier_job_latency_seconds", "Time from enqueued_at to the job's delivery to the executor, by queue and tenant.")
        static let inFlight = Family("courier_jobs_in_flight", "Jobs fetched and not yet acknowledged.")
        static let concurrencyLimit = Family("courier_concurrency_limit", "Most jobs this process holds at once (-c).")
        static let retries = Family("courier_retries_scheduled_total", "Failed jobs put in the retry set, by queue.")
        static let dead = Family("courier_jobs_dead_total", "Jobs put in the dead set, by queue.")
        static let breakerState = Family("courier_breaker_state", "1 for the circuit breaker's current state.")
        static let breakerTransitions = Family("courier_breaker_transitions_total", "Circuit breaker transitions, by new state.")
        static let redisErrors = Family(
            "courier_redis_errors_total", "Failed Redis calls (round trips, heartbeats, scheduler, recovery), by kind.")
        static let executorErrors = Family("courier_executor_errors_total", "Deliveries the executor did not answer properly, by kind.")
        static let queueDepth = Family("courier_queue_depth", "Jobs waiting in each configured queue (sampled at each heartbeat).")
        static let queueLatency = Family("courier_queue_latency_seconds", "Age of the oldest job in each queue (sampled at each heartbeat).")
        static let setSize = Family("courier_set_size", "Entries in Sidekiq's retry, schedule and dead sets (sampled at each heartbeat).")
        static let recovered = Family("courier_recovered_jobs_total", "Jobs pushed back from processes that died.")
        static let roundTrips = Family("courier_redis_round_trips_total", "Fetch/acknowledge round trips to Redis.")
        static let limiterDeferred = Family(
            "courier_limiter_deferred_total", "Jobs of a class over its cluster-wide limiter, moved to the schedule set for later.")
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
        var tenant: String
    }

    /// The histograms' labels.
    private struct QueueTenant: Hashable {
        var queue: String
        var tenant: String
    }

    private struct CancelLabels: Hashable {
        var reason: String
        var result: String
    }

    /// The labelled series registered so far, by label values.
    private struct Series: ~Copyable {
        var jobs: [JobLabels: Counter] = [:]
        var durations: [QueueTenant: ValueHistogram] = [:]
        var latencies: [QueueTenant: ValueHistogram] = [:]
        var retries: [String: Counter] = [:]
        var deaths: [String: Counter] = [:]
        var redisErrors: [String: Counter] = [:]
        var tenants: LabelBound
        var classes: LabelBound
        var breakerTransitions: [String: Counter] = [:]
        var executorErrors: [String: Counter] = [:]
        var exhaustedHooks: [String: Counter] = [:]
        var cancels: [CancelLabels: Counter] = [:]
        var queueDepth: [String: Gauge] = [:]
        var queueLatency: [String: Gauge] = [:]
        var setSizes: [String: Gauge] = [:]
    }

    private let registry = PrometheusCollectorRegistry()
    private let series: Mutex<Series>
    private let inFlight: Gauge
    private let concurrencyLimit: Gauge
    private let recoveredJobs: Counter
    private let roundTrips: Counter
    private let limiterDeferredJobs: Counter
    private let breakerGauges: [(state: String, gauge: Gauge)]
    /// Held while the breaker's three gauges change and while rendering, so a
    /// scrape never sees two states (or none) at 1.
    private let breakerLock = Mutex(())

    /// A registry with the unlabelled series at 0 and the breaker closed; `labels` bounds the tenant and class labels.
    public init(labels: MetricsLabels = MetricsLabels()) {
        series = Mutex(Series(tenants: LabelBound(labels.tenants), classes: LabelBound(.firstSeen(limit: labels.classLimit))))
        inFlight = registry.makeGauge(descriptor: Family.inFlight.descriptor)
        concurrencyLimit = registry.makeGauge(descriptor: Family.concurrencyLimit.descriptor)
        let registry = registry
        breakerGauges = Self.breakerStates.map { ($0, registry.makeGauge(descriptor: Family.breakerState.descriptor, labels: [("state", $0)])) }
        breakerGauges[0].gauge.set(to: 1)
        recoveredJobs = registry.makeCounter(descriptor: Family.recovered.descriptor)
        roundTrips = registry.makeCounter(descriptor: Family.roundTrips.descriptor)
        limiterDeferredJobs = registry.makeCounter(descriptor: Family.limiterDeferred.descriptor)
        series.withLock { s in
            // Every error and event series with a known label set exists from the start at 0,
            // so `rate()` and alerts see a 0 rather than no series until the first error.
            for kind in Self.redisErrorKinds { register(&s.redisErrors, kind, Family.redisErrors, label: "kind") }
            for kind in Self.executorErrorKinds { register(&s.executorErrors, kind, Family.executorErrors, label: "kind") }
            for state in Self.breakerStates { register(&s.breakerTransitions, state, Family.breakerTransitions, label: "to") }
            for result in Self.exhaustedHookResults { register(&s.exhaustedHooks, result, Family.exhaustedHooks, label: "result") }
            for reason in Self.cancelReasons {
                for result in Self.cancelResults {
                    s.cancels[CancelLabels(reason: reason, result: result)] = registry.makeCounter(
                        descriptor: Family.cancels.descriptor, labels: [("reason", reason), ("result", result)])
                }
            }
        }
    }

    /// The label values of the series that exist at 0 from the start (docs/operations.md lists them).
    static let redisErrorKinds = ["connection", "timeout", "reply", "script", "other"]
    static let executorErrorKinds = ["unavailable", "http", "timeout"]
    static let exhaustedHookResults = ["ok", "retried", "failed"]
    static let cancelReasons = ["timeout", "shutdown", "cancel"]
    static let cancelResults = ["cancelled", "not_running", "unsupported", "failed"]

    /// Counts a finished job in `courier_jobs_total` (and, for a retry or a death, in
    /// `courier_retries_scheduled_total`/`courier_jobs_dead_total`); if it ran, its time in
    /// `courier_job_duration_seconds` and its wait in `courier_job_latency_seconds`.
    /// Tenant and class are bounded (`MetricsLabels`); a job without a tenant counts as `none`.
    public func jobFinished(queue: String, jobClass: String, outcome: String, tenant: String?, seconds: Double?, latency: Double?) {
        series.withLock { s in
            let tenantLabel = tenant.map { s.tenants.label($0) } ?? Self.noTenant
            let key = JobLabels(queue: queue, jobClass: s.classes.label(jobClass), outcome: outcome, tenant: tenantLabel)
            if let counter = s.jobs[key] {
                counter.increment()
            } else {
                let counter = registry.makeCounter(
                    descriptor: Family.jobs.descriptor,
                    labels: [("queue", queue), ("class", key.jobClass), ("outcome", outcome), ("tenant", tenantLabel)])
                s.jobs[key] = counter
                counter.increment()
            }
            if outcome == "retry" {
                increment(&s.retries, queue, Family.retries, label: "queue")
            } else if outcome == "dead" {
                increment(&s.deaths, queue, Family.dead, label: "queue")
            }
            let histogramKey = QueueTenant(queue: queue, tenant: tenantLabel)
            if let seconds { record(seconds, in: &s.durations, histogramKey, Family.duration, buckets: Self.durationBuckets) }
            if let latency { record(latency, in: &s.latencies, histogramKey, Family.latency, buckets: Self.latencyBuckets) }
        }
    }

    /// `courier_concurrency_limit`: the process's `-c`.
    public func setConcurrencyLimit(_ n: Int) { concurrencyLimit.set(to: Double(n)) }

    /// `courier_jobs_in_flight`: jobs held now.
    public func setInFlight(_ n: Int) { inFlight.set(to: Double(n)) }

    /// The breaker moved to `to`: `courier_breaker_state` and a transition counted.
    public func breaker(_ to: String) {
        breakerLock.withLock { _ in
            for (state, gauge) in breakerGauges { gauge.set(to: state == to ? 1 : 0) }
        }
        series.withLock { increment(&$0.breakerTransitions, to, Family.breakerTransitions, label: "to") }
    }

    /// A failed Redis call of `kind` (connection, timeout, reply, script, other).
    public func redisError(_ kind: String) {
        series.withLock { increment(&$0.redisErrors, kind, Family.redisErrors, label: "kind") }
    }
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
    /// `n` jobs over a class's limiter went to the schedule set.
    public func limiterDeferred(_ n: Int) {
        if n > 0 { limiterDeferredJobs.increment(by: Int64(n)) }
    }
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

    /// Registers the counter for one label value of a family with one label, at 0.
    private func register(_ counters: inout [String: Counter], _ value: String, _ family: Family, label: String) {
        counters[value] = registry.makeCounter(descriptor: family.descriptor, labels: [(label, value)])
    }

    /// Increments the counter for one label value of a family with one label.
    private func increment(_ counters: inout [String: Counter], _ value: String, _ family: Family, label: String) {
        if let counter = counters[value] { return counter.increment() }
        let counter = registry.makeCounter(descriptor: family.descriptor, labels: [(label, value)])
        counters[value] = counter
        counter.increment()
    }

    /// Records into the histogram for one queue and tenant.
    private func record(
        _ value: Double, in histograms: inout [QueueTenant: ValueHistogram], _ key: QueueTenant, _ family: Family, buckets: [Double]
    ) {
        if let histogram = histograms[key] { return histogram.record(value) }
        let histogram = registry.makeValueHistogram(
            descriptor: family.descriptor, labels: [("queue", key.queue), ("tenant", key.tenant)], buckets: buckets)
        histograms[key] = histogram
        histogram.record(value)
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
