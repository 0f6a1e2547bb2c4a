# frozen_string_literal: true

require_relative "test_helper"
require "fake_open_telemetry"

# Records the OpenTelemetry context current inside perform (nil without the API).
class TraceProbeJob
  include Sidekiq::Job

  def self.seen = (@seen ||= [])

  def perform(raise_it = false)
    self.class.seen << (defined?(::OpenTelemetry::Context) ? ::OpenTelemetry::Context.current : nil)
    raise ArgumentError, "probe failed" if raise_it
  end
end

# A traceparent (the traceparent header, an entry's "traceparent", the
# payload's "traceparent") becomes the job's parent context and the parent of
# its "<Class> process" span, against a stand-in for opentelemetry-api
# (support/fake_open_telemetry.rb: Debian packages no OpenTelemetry gems).
class TraceTest < CourierTest::Case
  FAKE = CourierTest::FakeOpenTelemetry
  PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
  OTHER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

  def setup
    super
    TraceProbeJob.seen.clear
    FAKE.install
  end

  def teardown
    FAKE.uninstall
    super
  end

  def spans = FAKE.tracer_provider.tracer.spans

  def test_traceparent_header_is_the_parent_of_the_job_span
    payload = push(TraceProbeJob)
    jid = JSON.parse(payload)["jid"]
    assert_equal 200, post_job(payload, headers: {"Traceparent" => PARENT, "Courier-Queue" => "critical"}).status

    assert_equal [{"traceparent" => PARENT}], FAKE.propagation.carriers, "extracted from exactly the traceparent"
    assert_equal 1, spans.size
    span = spans.first
    assert_equal "TraceProbeJob process", span.name
    assert_equal :consumer, span.kind
    assert_equal PARENT, span.parent.traceparent, "the span's parent is the extracted context"
    assert_equal({"messaging.system" => "sidekiq", "messaging.sidekiq.job_class" => "TraceProbeJob",
                  "messaging.destination" => "critical", "messaging.destination_kind" => "queue",
                  "messaging.operation" => "process", "messaging.message_id" => jid}, span.attributes)
    inside = TraceProbeJob.seen.first
    assert_same span, inside.span, "perform ran inside the span"
    assert_equal PARENT, inside.traceparent
    assert_equal [["courier-sidecar", Courier::Sidecar::VERSION]], FAKE.tracer_provider.requests
    assert_nil FAKE::Context.current.traceparent, "the context is restored after the job"
  end

  def test_payload_traceparent_and_the_header_wins
    post_job(with_fields(push(TraceProbeJob), "traceparent" => PARENT))
    post_job(with_fields(push(TraceProbeJob), "traceparent" => PARENT), headers: {"Traceparent" => OTHER})
    assert_equal [PARENT, OTHER], spans.map { |s| s.parent.traceparent }
  end

  def test_the_payloads_tracestate_goes_with_its_own_traceparent
    state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    post_job(with_fields(push(TraceProbeJob), "traceparent" => PARENT, "tracestate" => state), headers: {"Traceparent" => PARENT})
    post_job(with_fields(push(TraceProbeJob), "traceparent" => PARENT, "tracestate" => state), headers: {"Traceparent" => OTHER})
    post_job(with_fields(push(TraceProbeJob), "traceparent" => PARENT, "tracestate" => 42))
    assert_equal [{"traceparent" => PARENT, "tracestate" => state}, {"traceparent" => OTHER}, {"traceparent" => PARENT}],
                 FAKE.propagation.carriers, "another trace's traceparent, or a tracestate that is not a string: without it"
  end

  def test_active_job_span_is_named_after_the_wrapped_class
    post_job(push(NoopActiveJob), headers: {"Traceparent" => PARENT})
    assert_equal ["NoopActiveJob process"], spans.map(&:name)
    assert_equal "NoopActiveJob", spans.first.attributes["messaging.sidekiq.job_class"]
  end

  def test_batch_and_stream_entries_carry_their_traceparent
    entries = [{"payload" => push(TraceProbeJob), "traceparent" => PARENT}, {"payload" => push(TraceProbeJob)}]
    post_job(JSON.generate("jobs" => entries), path: "/v1/jobs/batch")
    assert_equal [200, 200], answer["results"].map { |r| r["code"] }
    assert_equal [PARENT], spans.map { |s| s.parent.traceparent }, "only the entry with a traceparent is traced"

    built = Courier::Sidecar::Boot.build(self.class.options(job_threads: 1), logger: LOGGER)
    @app = built.app
    post_job(JSON.generate("jobs" => [{"payload" => push(TraceProbeJob), "traceparent" => OTHER}]), path: "/v1/jobs/stream")
    assert_equal 200, JSON.parse(last_response.body.lines.first)["code"]
    assert_equal [PARENT, OTHER], spans.map { |s| s.parent.traceparent }
  ensure
    built&.pool&.stop!
  end

  def test_no_traceparent_no_tracing_at_all
    assert_equal 200, post_job(push(TraceProbeJob)).status
    assert_empty FAKE.propagation.carriers
    assert_empty spans
    assert_nil TraceProbeJob.seen.first.traceparent
  end

  def test_a_failing_job_records_its_exception_on_the_span
    assert_equal 422, post_job(push(TraceProbeJob, true), headers: {"Traceparent" => PARENT}).status
    assert_equal "ArgumentError", answer["error_class"]
    assert_instance_of ArgumentError, spans.first.exception
  end

  def test_without_a_tracer_only_the_context_is_set
    FAKE.install(tracer: false)
    assert_equal 200, post_job(push(TraceProbeJob), headers: {"Traceparent" => PARENT}).status
    assert_equal PARENT, TraceProbeJob.seen.first.traceparent
    assert_nil TraceProbeJob.seen.first.span
  end

  def test_the_sidekiq_instrumentation_makes_the_span_itself
    middleware = FAKE::Instrumentation::Sidekiq::Middlewares::Server::TracerMiddleware
    chain = Courier::Sidecar::SidekiqAdapter.current.server_middleware
    chain.prepend(middleware)
    payload = push(TraceProbeJob)
    assert_equal 200, post_job(payload, headers: {"Traceparent" => PARENT}).status
    assert_empty spans, "no second span beside the instrumentation's"
    assert_equal [[JSON.parse(payload)["jid"], PARENT]], middleware.seen, "its middleware ran inside the context"
  ensure
    chain&.remove(middleware)
  end

  def test_without_open_telemetry_a_traceparent_changes_nothing
    FAKE.uninstall
    assert_equal 200, post_job(push(TraceProbeJob), headers: {"Traceparent" => PARENT}).status
    assert_equal [nil], TraceProbeJob.seen
  end
end
