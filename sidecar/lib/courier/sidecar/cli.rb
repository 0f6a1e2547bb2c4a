# frozen_string_literal: true

require "logger"
require "tmpdir"
require "fileutils"
require_relative "../sidecar"

module Courier
  module Sidecar
    # `courier-sidecar`: parse flags, boot the Rails app once (in the master,
    # before Puma forks workers), serve the Rack app with Puma's Ruby API
    # (Puma 5 and 6). Each serving process fires the app's Sidekiq lifecycle
    # events and starts its stream job threads; in cluster mode the workers
    # also listen for sibling cancels.
    class CLI
      EX_USAGE = 64 # sysexits: bad flag or missing secret

      def self.run(argv)
        new.run(argv)
      end

      def run(argv)
        options = Options.parse(argv)
        logger = Logger.new($stderr, progname: "courier-sidecar")
        warn_dev(logger) if options.dev
        Boot.rails_app(options.app, threads: options.threads, job_threads: options.job_threads)
        built = Boot.build(options, logger: logger)
        serve(built, options, logger)
      rescue Options::UsageError => e
        warn "courier-sidecar: #{e.message}"
        exit EX_USAGE
      end

      private

      def warn_dev(logger)
        logger.warn("*" * 72)
        logger.warn("DEV MODE: requests are NOT authenticated. Anyone who can reach this port")
        logger.warn("can run any job class of the app. Never use --dev outside development.")
        logger.warn("*" * 72)
      end

      def serve(built, options, logger)
        require "puma"
        require "puma/configuration"
        require "puma/launcher"
        require "puma/server"
        ::Puma::Server.prepend(PumaStopHook)

        cluster = options.workers > 1
        rundir = cluster ? private_rundir : nil
        conf = puma_configuration(built, options) do |user|
          next unless cluster

          user.workers options.workers
          # The app is already booted in this (master) process; workers
          # inherit it copy-on-write. Sockets must not be shared across fork.
          user.preload_app!
          user.before_fork { disconnect_for_fork }
          user.on_worker_boot { boot_worker(built, rundir, logger) }
          user.on_worker_shutdown do
            built.lifecycle.join
            @siblings&.stop!
          end
        end
        return serve_single(built, conf) unless cluster

        launcher(conf).run
      end

      # Puma's SIGTERM handler raises SignalException out of `run` (its
      # raise_exception_on_sigterm default), so :quiet/:shutdown are awaited in
      # an ensure; stopping! also covers a Puma that ended without stopping its
      # server (the port was taken).
      def serve_single(built, conf)
        built.lifecycle.boot!
        built.pool.start!
        launcher(conf).run
      ensure
        built.lifecycle.stopping!
        built.lifecycle.join
      end

      def puma_configuration(built, options)
        host = options.bind.include?(":") ? "[#{options.bind}]" : options.bind
        env = defined?(::Rails) ? ::Rails.env.to_s : (ENV["RACK_ENV"] || "production")
        # config_files "-": never pick up a config/puma.rb of the app.
        ::Puma::Configuration.new({config_files: ["-"]}) do |user, _file, _default|
          user.bind "tcp://#{host}:#{options.port}"
          # Made as requests need them, up to --threads (Puma trims idle ones
          # after 30 s): streams carry many jobs each, so most of the
          # concurrency is in the job threads, and an idle thread still costs
          # RSS and GC time.
          user.threads 1, options.threads
          user.environment env
          user.log_requests false
          user.tag "courier-sidecar"
          user.app built.app
          yield user
        end
      end

      # Puma 6 split the log writer out of Events.
      def launcher(conf)
        if defined?(::Puma::LogWriter)
          ::Puma::Launcher.new(conf, log_writer: ::Puma::LogWriter.stdio, events: ::Puma::Events.new)
        else
          require "puma/events"
          ::Puma::Launcher.new(conf, events: ::Puma::Events.stdio)
        end
      end

      # In each worker after fork: the app's :startup, the stream job
      # threads, and the cancel channel.
      def boot_worker(built, rundir, logger)
        built.lifecycle.boot!
        built.pool.start!
        @siblings = SiblingChannel.new(rundir, built.running, logger: logger).start!
        built.app.canceller = @siblings
      end

      # Sockets of the workers of this sidecar only (0700), removed at exit.
      def private_rundir
        dir = Dir.mktmpdir("courier-sidecar-")
        master = Process.pid
        at_exit { FileUtils.rm_rf(dir) if Process.pid == master }
        dir
      end

      def disconnect_for_fork
        ::ActiveRecord::Base.connection_handler.clear_all_connections! if defined?(::ActiveRecord::Base)
        return unless defined?(::Sidekiq)

        SidekiqAdapter.current.redis_pool.reload(&:close)
      end
    end
  end
end
