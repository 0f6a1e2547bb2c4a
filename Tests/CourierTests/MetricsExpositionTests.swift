// The `/metrics` exposition, byte for byte: a golden text for a fixed set of
// calls on `CourierMetrics`, so a change of the registry behind it (names,
// labels, HELP/TYPE, escaping, number formatting) shows up here first.
import Ops
import XCTest

final class MetricsExpositionTests: XCTestCase {
    /// The fixed calls: every `DispatchMetrics` method and the two that only
    /// `CourierService` makes, with label values that need escaping, a duration
    /// on a bucket bound, one past the last bucket and a job that never ran.
    static func recorded() -> CourierMetrics {
        let m = CourierMetrics()
        m.jobFinished(queue: "default", jobClass: "NoopJob", outcome: "done", seconds: 0.0009765625)  // 2^-10: exact sums
        m.jobFinished(queue: "default", jobClass: "NoopJob", outcome: "done", seconds: 0.25)  // on a bound: counted in le="0.25"
        m.jobFinished(queue: "default", jobClass: "NoopJob", outcome: "retry", seconds: 3)
        m.jobFinished(queue: "critical", jobClass: "Weird\"Job\\\nEnd", outcome: "dead", seconds: 400)  // past 300: only +Inf
        m.jobFinished(queue: "default", jobClass: "unknown", outcome: "dead", seconds: nil)  // never ran: no duration
        m.setInFlight(3)
        for state in ["open", "half_open", "closed", "open"] { m.breaker(state) }
        m.redisError()
        m.redisError()
        m.executorError("unavailable")
        m.executorError("http")
        m.executorError("http")
        m.recovered(4)
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
        XCTAssertEqual(text, Self.golden, "\n--- got ---\n\(text)")
    }

    func testFreshRegistry() {
        let text = CourierMetrics().render()
        XCTAssertEqual(text, Self.goldenFresh, "\n--- got ---\n\(text)")
    }

    static let golden = #"""
        # HELP courier_jobs_total Jobs finished, by queue, class and outcome (done, retry, dead, discarded, failed, requeued, cancelled).
        # TYPE courier_jobs_total counter
        courier_jobs_total{queue="critical",class="Weird\"Job\\\nEnd",outcome="dead"} 1
        courier_jobs_total{queue="default",class="NoopJob",outcome="done"} 2
        courier_jobs_total{queue="default",class="NoopJob",outcome="retry"} 1
        courier_jobs_total{queue="default",class="unknown",outcome="dead"} 1
        # HELP courier_job_duration_seconds Time from POST to the executor's answer.
        # TYPE courier_job_duration_seconds histogram
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.001"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.0025"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.005"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.01"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.025"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.05"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.1"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.25"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="0.5"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="1.0"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="2.5"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="5.0"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="10.0"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="30.0"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="60.0"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="300.0"} 0
        courier_job_duration_seconds_bucket{queue="critical",class="Weird\"Job\\\nEnd",le="+Inf"} 1
        courier_job_duration_seconds_sum{queue="critical",class="Weird\"Job\\\nEnd"} 400.0
        courier_job_duration_seconds_count{queue="critical",class="Weird\"Job\\\nEnd"} 1
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.001"} 1
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.0025"} 1
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.005"} 1
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.01"} 1
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.025"} 1
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.05"} 1
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.1"} 1
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.25"} 2
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="0.5"} 2
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="1.0"} 2
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="2.5"} 2
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="5.0"} 3
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="10.0"} 3
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="30.0"} 3
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="60.0"} 3
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="300.0"} 3
        courier_job_duration_seconds_bucket{queue="default",class="NoopJob",le="+Inf"} 3
        courier_job_duration_seconds_sum{queue="default",class="NoopJob"} 3.2509765625
        courier_job_duration_seconds_count{queue="default",class="NoopJob"} 3
        # HELP courier_jobs_in_flight Jobs fetched and not yet acknowledged.
        # TYPE courier_jobs_in_flight gauge
        courier_jobs_in_flight 3
        # HELP courier_breaker_state 1 for the circuit breaker's current state.
        # TYPE courier_breaker_state gauge
        courier_breaker_state{state="closed"} 0
        courier_breaker_state{state="open"} 1
        courier_breaker_state{state="half_open"} 0
        # HELP courier_breaker_transitions_total Circuit breaker transitions, by new state.
        # TYPE courier_breaker_transitions_total counter
        courier_breaker_transitions_total{to="closed"} 1
        courier_breaker_transitions_total{to="half_open"} 1
        courier_breaker_transitions_total{to="open"} 2
        # HELP courier_redis_errors_total Failed Redis round trips.
        # TYPE courier_redis_errors_total counter
        courier_redis_errors_total 2
        # HELP courier_executor_errors_total Deliveries the executor did not answer properly, by kind.
        # TYPE courier_executor_errors_total counter
        courier_executor_errors_total{kind="http"} 2
        courier_executor_errors_total{kind="unavailable"} 1
        # HELP courier_queue_depth Jobs waiting in each configured queue (sampled at each heartbeat).
        # TYPE courier_queue_depth gauge
        courier_queue_depth{queue="critical"} 0
        courier_queue_depth{queue="default"} 12
        # HELP courier_queue_latency_seconds Age of the oldest job in each queue (sampled at each heartbeat).
        # TYPE courier_queue_latency_seconds gauge
        courier_queue_latency_seconds{queue="critical"} 0.0
        courier_queue_latency_seconds{queue="default"} 1.5
        # HELP courier_set_size Entries in Sidekiq's retry, schedule and dead sets (sampled at each heartbeat).
        # TYPE courier_set_size gauge
        courier_set_size{set="dead"} 7
        courier_set_size{set="retry"} 2
        courier_set_size{set="schedule"} 0
        # HELP courier_recovered_jobs_total Jobs pushed back from processes that died.
        # TYPE courier_recovered_jobs_total counter
        courier_recovered_jobs_total 4
        # HELP courier_redis_round_trips_total Fetch/acknowledge round trips to Redis.
        # TYPE courier_redis_round_trips_total counter
        courier_redis_round_trips_total 5
        # HELP courier_exhausted_hooks_total Calls of the executor's /v1/jobs/exhausted, by result (ok, retried, failed).
        # TYPE courier_exhausted_hooks_total counter
        courier_exhausted_hooks_total{result="failed"} 1
        courier_exhausted_hooks_total{result="ok"} 1
        # HELP courier_cancels_total Cancels of running jobs, by reason (shutdown, timeout, cancel) and result (cancelled, not_running, unsupported, failed).
        # TYPE courier_cancels_total counter
        courier_cancels_total{reason="shutdown",result="not_running"} 1
        courier_cancels_total{reason="timeout",result="cancelled"} 1

        """#

    static let goldenFresh = #"""
        # HELP courier_jobs_total Jobs finished, by queue, class and outcome (done, retry, dead, discarded, failed, requeued, cancelled).
        # TYPE courier_jobs_total counter
        # HELP courier_job_duration_seconds Time from POST to the executor's answer.
        # TYPE courier_job_duration_seconds histogram
        # HELP courier_jobs_in_flight Jobs fetched and not yet acknowledged.
        # TYPE courier_jobs_in_flight gauge
        courier_jobs_in_flight 0
        # HELP courier_breaker_state 1 for the circuit breaker's current state.
        # TYPE courier_breaker_state gauge
        courier_breaker_state{state="closed"} 1
        courier_breaker_state{state="open"} 0
        courier_breaker_state{state="half_open"} 0
        # HELP courier_breaker_transitions_total Circuit breaker transitions, by new state.
        # TYPE courier_breaker_transitions_total counter
        # HELP courier_redis_errors_total Failed Redis round trips.
        # TYPE courier_redis_errors_total counter
        courier_redis_errors_total 0
        # HELP courier_executor_errors_total Deliveries the executor did not answer properly, by kind.
        # TYPE courier_executor_errors_total counter
        # HELP courier_queue_depth Jobs waiting in each configured queue (sampled at each heartbeat).
        # TYPE courier_queue_depth gauge
        # HELP courier_queue_latency_seconds Age of the oldest job in each queue (sampled at each heartbeat).
        # TYPE courier_queue_latency_seconds gauge
        # HELP courier_set_size Entries in Sidekiq's retry, schedule and dead sets (sampled at each heartbeat).
        # TYPE courier_set_size gauge
        # HELP courier_recovered_jobs_total Jobs pushed back from processes that died.
        # TYPE courier_recovered_jobs_total counter
        courier_recovered_jobs_total 0
        # HELP courier_redis_round_trips_total Fetch/acknowledge round trips to Redis.
        # TYPE courier_redis_round_trips_total counter
        courier_redis_round_trips_total 0
        # HELP courier_exhausted_hooks_total Calls of the executor's /v1/jobs/exhausted, by result (ok, retried, failed).
        # TYPE courier_exhausted_hooks_total counter
        # HELP courier_cancels_total Cancels of running jobs, by reason (shutdown, timeout, cancel) and result (cancelled, not_running, unsupported, failed).
        # TYPE courier_cancels_total counter

        """#
}
