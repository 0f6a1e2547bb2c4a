# frozen_string_literal: true

module CourierTest
  # A stand-in for the opentelemetry-api gem (Debian packages none of the
  # OpenTelemetry Ruby gems), with exactly the API surface the sidecar's
  # Trace calls, recording what was asked of it:
  #
  #   OpenTelemetry.propagation.extract(carrier) → a Context
  #   OpenTelemetry::Context.with_current(context) { }, Context.current
  #   OpenTelemetry.tracer_provider.tracer(name, version) → a Tracer
  #   tracer.in_span(name, attributes:, kind:) { |span| }, which, like the
  #   real one, records an exception raised through it and re-raises it
  #
  # Installed as ::OpenTelemetry by FakeOpenTelemetry.install (optionally
  # with a nil tracer provider: then there is no tracer to make spans with).
  module FakeOpenTelemetry
    Span = Struct.new(:name, :attributes, :kind, :parent, :exception)

    # The real one is immutable; here it holds the extracted traceparent and
    # the span made under it.
    class Context
      attr_reader :traceparent, :span

      def initialize(traceparent, span = nil)
        @traceparent = traceparent
        @span = span
      end

      def self.current
        Thread.current[:fake_otel_context] || ROOT
      end

      def self.with_current(context)
        previous = Thread.current[:fake_otel_context]
        Thread.current[:fake_otel_context] = context
        yield context
      ensure
        Thread.current[:fake_otel_context] = previous
      end

      ROOT = new(nil)
    end

    class Propagator
      attr_reader :carriers

      def initialize
        @carriers = []
      end

      def extract(carrier)
        @carriers << carrier
        Context.new(carrier["traceparent"])
      end
    end

    class Tracer
      attr_reader :spans

      def initialize
        @spans = []
      end

      def in_span(name, attributes: nil, kind: nil)
        span = Span.new(name, attributes, kind, Context.current)
        @spans << span
        Context.with_current(Context.new(Context.current.traceparent, span)) { yield span }
      rescue Exception => e # rubocop:disable Lint/RescueException -- as the real in_span
        span.exception = e if span
        raise
      end
    end

    class TracerProvider
      attr_reader :requests, :tracer

      def initialize
        @requests = []
        @tracer = Tracer.new
      end

      def tracer(name = nil, version = nil)
        @requests << [name, version] unless name.nil?
        @tracer
      end
    end

    # The Sidekiq instrumentation's server middleware (its constant path only,
    # and a call that records the jobs it saw).
    module Instrumentation
      module Sidekiq
        module Middlewares
          module Server
            class TracerMiddleware
              def self.seen = (@seen ||= [])

              def call(_worker, job, _queue)
                self.class.seen << [job["jid"], Context.current.traceparent]
                yield
              end
            end
          end
        end
      end
    end

    class << self
      attr_reader :propagation, :tracer_provider

      # tracer: false makes tracer_provider nil.
      def install(tracer: true)
        @propagation = Propagator.new
        @tracer_provider = tracer ? TracerProvider.new : nil
        Instrumentation::Sidekiq::Middlewares::Server::TracerMiddleware.seen.clear
        Object.const_set(:OpenTelemetry, self)
      end

      def uninstall
        Object.send(:remove_const, :OpenTelemetry) if Object.const_defined?(:OpenTelemetry, false)
      end
    end
  end
end
