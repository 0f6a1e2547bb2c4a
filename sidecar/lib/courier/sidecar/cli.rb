# frozen_string_literal: true

require "logger"
require_relative "../sidecar"

module Courier
  module Sidecar
    # `courier-sidecar`: parse flags, boot the Rails app once (in the master,
    # before Puma forks workers), serve the Rack app with Puma's Ruby API.
    class CLI
      EX_USAGE = 64 # sysexits: bad flag or missing secret

      def self.run(argv)
        new.run(argv)
      end

      def run(argv)
        options = Options.parse(argv)
        logger = Logger.new($stderr, progname: "courier-sidecar")
        warn_dev(logger) if options.dev
        Boot.rails_app(options.app, threads: options.threads)
        app = Boot.build_app(options, logger: logger)
        serve(app, options)
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

      def serve(app, options)
        require "puma"
        require "puma/configuration"
        require "puma/launcher"
        require "puma/events"

        host = options.bind.include?(":") ? "[#{options.bind}]" : options.bind
        env = defined?(::Rails) ? ::Rails.env.to_s : (ENV["RACK_ENV"] || "production")
        # config_files "-": never pick up a config/puma.rb of the app.
        conf = ::Puma::Configuration.new({config_files: ["-"]}) do |user, _file, _default|
          user.bind "tcp://#{host}:#{options.port}"
          user.threads options.threads, options.threads
          user.environment env
          user.log_requests false
          user.tag "courier-sidecar"
          user.app app
          if options.workers > 1
            user.workers options.workers
            # The app is already booted in this (master) process; workers
            # inherit it copy-on-write. Sockets must not be shared across fork.
            user.preload_app!
            user.before_fork { disconnect_for_fork }
          end
        end
        ::Puma::Launcher.new(conf, events: ::Puma::Events.stdio).run
      end

      def disconnect_for_fork
        ::ActiveRecord::Base.connection_handler.clear_all_connections! if defined?(::ActiveRecord::Base)
        ::Sidekiq.redis_pool.reload(&:close) if defined?(::Sidekiq) && ::Sidekiq.respond_to?(:redis_pool)
      end
    end
  end
end
