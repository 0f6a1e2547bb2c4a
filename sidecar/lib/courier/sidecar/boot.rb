# frozen_string_literal: true

module Courier
  module Sidecar
    # Boots the Rails app once, in Sidekiq *server* mode, and builds the Rack
    # app around it. Called in the Puma master before any fork (preload), and
    # by the tests in-process.
    module Boot
      # Where the app's job classes live: the only files a payload's class
      # name may autoload (see JobResolver).
      JOB_DIRS = %w[app/jobs app/workers app/sidekiq].freeze

      module_function

      # job_threads: the stream job pool's size (nil: as many as threads).
      def rails_app(root, threads:, job_threads: nil)
        root = File.expand_path(root)
        # Rails resolves relative paths (log/, tmp/) from the cwd, as `rails s` does.
        Dir.chdir(root)
        # Threads that may run app code at once: the job slots (JobPool).
        # Every job and every exhausted hook runs on one, whichever thread
        # runs it, so no more connections are ever checked out at once.
        # database.yml conventionally sizes the AR pool from this, Sidekiq its
        # Redis pool from its concurrency.
        runners = job_threads || threads
        ENV["RAILS_MAX_THREADS"] ||= runners.to_s

        # The app's own boot file first, as `rails server` does: it runs
        # `bundler/setup` in a Bundler app, so every gem below comes from its
        # Gemfile.lock (harmless under `bundle exec`; absent in a Gemfile-less app).
        boot_rb = File.join(root, "config", "boot.rb")
        require boot_rb if File.file?(boot_rb)

        require "rails"
        require "sidekiq"
        # sidekiq.rb loads its railtie only if Rails was loaded first; this
        # library may have loaded sidekiq earlier, so load it explicitly.
        require "sidekiq/rails"
        # Sidekiq.server? is `defined?(Sidekiq::CLI)`. Loading it before the app
        # initialises makes the app's Sidekiq.configure_server blocks run (server
        # middleware, death handlers, lifecycle events, Redis config) and
        # installs Sidekiq's Rails reloader hook, exactly as in a `sidekiq` process.
        require "sidekiq/cli"
        adapter = SidekiqAdapter.current
        adapter.concurrency = runners

        require File.join(root, "config", "environment")
        adapter.strip_server_only_middleware
        load_active_job_wrapper
        ::Rails.application
      end

      # The sidekiq adapter (and its JobWrapper) are loaded lazily by
      # ActiveJob; load them now, from trusted code, so the resolver never has
      # to autoload them for a payload.
      def load_active_job_wrapper
        return unless defined?(::ActiveJob::Base)

        ::ActiveJob::Base.name # loading Base runs the on_load hooks that set the adapter
        require "active_job/queue_adapters/sidekiq_adapter"
        ::ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper
      end

      # Sidekiq's own reloader if the Sidekiq railtie installed it (server mode),
      # else the Rails one, else a pass-through for non-Rails apps.
      def reloader(adapter)
        r = adapter.reloader
        return r if r
        return ->(&block) { ::Rails.application.reloader.wrap(&block) } if defined?(::Rails) && ::Rails.application

        ->(&block) { block.call }
      end

      # The pieces of one serving process; `lifecycle` fires the app's Sidekiq
      # events and `pool` holds the stream job threads (the CLI starts both
      # once per serving process).
      Built = Struct.new(:app, :lifecycle, :running, :pool, keyword_init: true)

      def build(options, logger:)
        adapter = SidekiqAdapter.current
        rails = defined?(::Rails) && ::Rails.application
        cache = rails ? rails.config.cache_classes : true
        roots = rails ? JOB_DIRS.map { |d| File.join(::Rails.root.to_s, d) } : []
        resolver = JobResolver.new(autoload_roots: roots, cache: cache)
        reloader = self.reloader(adapter)
        lifecycle = Lifecycle.new(adapter, logger: logger)
        running = RunningJobs.new
        unique = UniqueJobs::Release.new(redis: ->(&block) { ::Sidekiq.redis(&block) },
                                         report: adapter.method(:handle_exception))
        runner = JobRunner.new(resolver: resolver, reloader: reloader, adapter: adapter, running: running,
                               context: lifecycle, reresolve: !cache, unique: unique)
        failure = Failure.new(resolver, adapter)
        verifier = options.dev ? nil : Signature.new(options.secret)
        app = App.new(
          runner: runner, failure: failure, resolver: resolver, verifier: verifier,
          exhausted: ExhaustedRunner.new(resolver: resolver, reloader: reloader, failure: failure, adapter: adapter),
          max_body: options.max_body, logger: logger, adapter: adapter, canceller: running, running: running,
          info: health_info(rails).merge(capacity_info(options))
        )
        app.batch = Batch.new(app, max_body: options.max_batch_body, max_jobs: options.max_batch_jobs)
        pool = JobPool.new(options.stream_threads, logger: logger)
        app.slots = pool
        spill = options.spill_after_ms.positive? ? SpillTimer.new(options.spill_after_ms / 1000.0) : nil
        times = JobTimes.new(quick_below: options.inline_below_ms / 1000.0)
        app.stream = Stream.new(app, pool: pool, running: running, failure: failure, context: lifecycle, spill: spill, times: times,
                                max_body: options.max_batch_body, max_jobs: options.stream_jobs_limit, logger: logger)
        Built.new(app: app, lifecycle: lifecycle, running: running, pool: pool)
      end

      def build_app(options, logger:)
        build(options, logger: logger).app
      end

      # What the dispatcher sizes its streams and tokens by: "capacity" jobs at
      # once in this executor, streamed or not (job threads × workers), at most
      # "max_stream_jobs" per stream; each open stream holds one of the
      # "request_threads" (the rest serve /v1/jobs, cancels, health). "processes"
      # (Puma workers): streams are spread over them, capacity / processes each.
      def capacity_info(options)
        {"capacity" => options.stream_threads * options.workers, "max_stream_jobs" => options.stream_jobs_limit,
         "request_threads" => options.threads * options.workers, "processes" => options.workers}
      end

      def health_info(rails)
        info = {"sidekiq" => ::Sidekiq::VERSION, "ruby" => RUBY_VERSION, "yjit" => !!(defined?(RubyVM::YJIT) && RubyVM::YJIT.enabled?)}
        return info unless rails

        info.merge("rails" => ::Rails.version, "rails_env" => ::Rails.env.to_s, "app" => ::Rails.root.basename.to_s)
      end
    end
  end
end
