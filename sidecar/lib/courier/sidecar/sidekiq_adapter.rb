# frozen_string_literal: true

module Courier
  module Sidecar
    # Everything the sidecar needs from Sidekiq, behind one small object per
    # major version, chosen by feature detection (never by version string):
    #
    #   Sidekiq 6.x: a module-level options hash (Sidekiq.options), handlers
    #                and middleware on the Sidekiq module.
    #   Sidekiq 7.x/8.x: a Sidekiq::Config object (Sidekiq.default_configuration)
    #                with capsules; error handlers take (ex, ctx, config).
    #
    # The rest of the sidecar calls only the methods below.
    module SidekiqAdapter
      module_function

      def current
        if ::Sidekiq.respond_to?(:default_configuration)
          Config.new(::Sidekiq.default_configuration)
        else
          Options.new
        end
      end

      # Sidekiq's own fire_event is an internal of its launcher, and 6.4's has no
      # `oneshot:` (7.x's :beat needs it), so the sidecar fires events itself.
      # Fires a lifecycle event the way Sidekiq's own fire_event does: in
      # registration order (reverse for quiet/shutdown), errors reported and
      # swallowed (re-raised for startup), one-shot events cleared after.
      def fire(adapter, events, name, reverse: false, reraise: false, oneshot: true)
        blocks = events[name]
        return unless blocks

        (reverse ? blocks.reverse : blocks).each do |block|
          block.call
        rescue => e
          adapter.handle_exception(e, {context: "Exception during Sidekiq lifecycle event.", event: name})
          raise e if reraise
        end
        blocks.clear if oneshot
      end

      # Sidekiq 6.x (verified: 6.4.1).
      class Options
        # Sidekiq 6's own reporting (every error handler with (ex, ctx), an
        # error in one logged), kept as it is.
        def initialize
          require "sidekiq/exception_handler"
          @reporter = Object.new.extend(::Sidekiq::ExceptionHandler)
        end

        def options = ::Sidekiq.options
        def redis_pool = ::Sidekiq.redis_pool
        def server_middleware = ::Sidekiq.server_middleware
        def death_handlers = ::Sidekiq.death_handlers
        def reloader = options[:reloader]
        def events = options[:lifecycle_events]
        def enter_job_thread; end
        def prepare_serving_process; end

        # Sidekiq sizes its Redis pool from this (retry_on re-enqueues use it).
        def concurrency=(threads)
          options[:concurrency] = threads
        end

        def handle_exception(error, context)
          @reporter.handle_exception(error, context)
        end

        def fire(name, **opts) = SidekiqAdapter.fire(self, events, name, **opts)

        # Nothing of Sidekiq's own runs per job in 6.x beyond the app's chain.
        def strip_server_only_middleware; end
      end

      # Sidekiq 7.x (verified: 7.3.2); 8.x keeps the same Config API.
      class Config
        def initialize(config)
          @config = config
        end

        def redis_pool = @config.redis_pool
        def server_middleware = @config.server_middleware
        def death_handlers = @config.death_handlers
        def reloader = @config[:reloader]
        def events = @config[:lifecycle_events]

        # Job threads use the default capsule (its Redis pool is sized by
        # concurrency), as Sidekiq's processor threads do, instead of the
        # 10-connection internal pool.
        def enter_job_thread
          Thread.current[:sidekiq_capsule] ||= @config.default_capsule
        end

        # The capsule builds its pool lazily (`@redis ||=`): build it once
        # per serving process, before Puma's threads could race to.
        def prepare_serving_process
          @config.default_capsule.redis_pool
        end

        def concurrency=(threads)
          @config.concurrency = threads
        end

        # Config#handle_exception calls each handler with (ex, ctx, config).
        def handle_exception(error, context)
          @config.handle_exception(error, context)
        end

        def fire(name, **opts) = SidekiqAdapter.fire(self, events, name, **opts)

        # Sidekiq 7 adds its execution-metrics middleware to every server
        # chain. Courier writes those metrics itself (it owns every Redis
        # write and sees each outcome), so the sidecar must not count twice.
        def strip_server_only_middleware
          return unless defined?(::Sidekiq::Metrics::Middleware)

          @config.server_middleware.remove(::Sidekiq::Metrics::Middleware)
        end
      end
    end
  end
end
