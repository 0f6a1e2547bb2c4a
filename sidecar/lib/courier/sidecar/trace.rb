# frozen_string_literal: true

module Courier
  module Sidecar
    # A job's W3C traceparent becomes the parent of its run when the app uses
    # OpenTelemetry: the context is extracted with the app's propagator and
    # is current while the job runs, inside a span "<Class> process" of kind
    # :consumer (the name, kind and attributes of
    # opentelemetry-instrumentation-sidekiq's server span with
    # `span_naming: :job_class`), so the spans the job makes (Active Record,
    # HTTP clients) join the trace of whatever enqueued it.
    #
    # The traceparent: the dispatcher's (the traceparent header, an entry's
    # "traceparent"), else the payload's "traceparent" (which the app's
    # Sidekiq client middleware puts there: operations.md, "Traces").
    #
    # Nothing happens without a traceparent or without OpenTelemetry's API
    # loaded. When the app's server middleware chain has the Sidekiq
    # instrumentation's own TracerMiddleware, that makes the span (named by
    # its own settings) and the sidecar only sets the context, so a job never
    # has two spans. The only OpenTelemetry API called:
    #   OpenTelemetry.propagation.extract(carrier) → context
    #   OpenTelemetry::Context.with_current(context) { }
    #   OpenTelemetry.tracer_provider.tracer(name, version)
    #   tracer.in_span(name, attributes:, kind:) { } (records an exception
    #   raised through it and marks the span as an error)
    module Trace
      INSTRUMENTATION = "OpenTelemetry::Instrumentation::Sidekiq::Middlewares::Server::TracerMiddleware"

      module_function

      # The traceparent the job runs under, or nil.
      def traceparent(job, given = nil)
        return given if given

        value = job["traceparent"]
        value if value.is_a?(String) && !value.empty?
      end

      # Runs the block under the traceparent's context (and a span), or just
      # runs it. adapter: the SidekiqAdapter (its server middleware chain).
      def wrap(job, queue, traceparent, adapter)
        return yield unless traceparent && defined?(::OpenTelemetry::Context) && ::OpenTelemetry.respond_to?(:propagation)

        context = ::OpenTelemetry.propagation.extract(carrier(job, traceparent))
        ::OpenTelemetry::Context.with_current(context) do
          tracer = span_tracer(adapter)
          if tracer
            tracer.in_span(span_name(job), attributes: attributes(job, queue), kind: :consumer) { yield }
          else
            yield
          end
        end
      end

      # What the propagator reads: the traceparent, and the payload's
      # "tracestate" (vendors' trace data, W3C) when it belongs to that
      # traceparent: the dispatcher passes the payload's own traceparent on,
      # never its tracestate, so one given that differs is another trace's.
      def carrier(job, traceparent)
        state = job["tracestate"]
        return {"traceparent" => traceparent} unless state.is_a?(String) && !state.empty? && job["traceparent"] == traceparent

        {"traceparent" => traceparent, "tracestate" => state}
      end

      # "<Class> process", as the Sidekiq instrumentation names it with span_naming: :job_class.
      def span_name(job)
        "#{job["wrapped"] || job["class"]} process"
      end

      # The Sidekiq instrumentation's attributes (its messaging.* names).
      def attributes(job, queue)
        attributes = {
          "messaging.system" => "sidekiq",
          "messaging.sidekiq.job_class" => (job["wrapped"] || job["class"]).to_s,
          "messaging.destination" => queue.to_s,
          "messaging.destination_kind" => "queue",
          "messaging.operation" => "process"
        }
        attributes["messaging.message_id"] = job["jid"] if job["jid"].is_a?(String)
        attributes
      end

      # The app's tracer, unless it has none or its Sidekiq instrumentation
      # makes the span. The provider is looked up each time (the app may
      # configure its SDK after boot); its tracer is kept while it stays the same.
      def span_tracer(adapter)
        return nil unless ::OpenTelemetry.respond_to?(:tracer_provider)
        return nil if instrumented?(adapter)

        provider = ::OpenTelemetry.tracer_provider
        return nil unless provider

        cached = @tracer
        return cached.last if cached&.first.equal?(provider)

        tracer = provider.tracer("courier-sidecar", VERSION)
        @tracer = [provider, tracer]
        tracer
      end

      def instrumented?(adapter)
        return false unless adapter && Object.const_defined?(INSTRUMENTATION)

        adapter.server_middleware.exists?(Object.const_get(INSTRUMENTATION))
      end
    end
  end
end
