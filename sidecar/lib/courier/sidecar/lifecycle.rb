# frozen_string_literal: true

module Courier
  module Sidecar
    # Fires the app's Sidekiq lifecycle events in each serving process, as a
    # Sidekiq process would, so gems that start or stop pollers there
    # (sidekiq-cron, sidekiq-scheduler) keep working:
    #
    #   :startup    once the app is booted, before the first job (errors abort boot)
    #   :heartbeat  right after, once (Sidekiq: the first heartbeat)
    #   :beat       every beat (Sidekiq 7+ only: 10 s)
    #   :quiet, :shutdown  as soon as Puma begins to stop, while it drains
    #
    # Puma stops from a signal trap, where no lock may be taken, so #stopping!
    # only writes a byte to a pipe; a thread of ours fires the events.
    class Lifecycle
      BEAT_SECONDS = 10

      class << self
        # The serving process's lifecycle, for the Puma hook (see PumaStopHook).
        attr_accessor :current
      end

      def initialize(adapter, logger:, beat_seconds: BEAT_SECONDS)
        @adapter = adapter
        @logger = logger
        @beat_seconds = beat_seconds
        @stopping = false
        @lock = Mutex.new
        @wake = ConditionVariable.new
      end

      # In the serving process (Puma single mode: before serving; cluster
      # mode: in each worker after fork).
      def boot!
        self.class.current = self
        @adapter.prepare_serving_process
        @reader, @writer = IO.pipe
        @adapter.fire(:startup, reraise: true)
        @watcher = Thread.new { watch_for_stop }
        @beater = Thread.new { beat_loop }
        @watcher.name = "courier.lifecycle"
        @beater.name = "courier.beat"
        self
      end

      # Trap-safe: a non-blocking write, nothing else.
      def stopping!
        @writer&.write_nonblock(".", exception: false)
      end

      # Sidekiq 7's Job#interrupted? asks its _context this.
      def stopping?
        @stopping
      end

      # Waits (bounded) until :quiet and :shutdown have run; for Puma's own
      # worker-shutdown hook and tests.
      def join(timeout = 30)
        @watcher&.join(timeout)
      end

      private

      def watch_for_stop
        @reader.read(1)
        @stopping = true
        @lock.synchronize { @wake.signal }
        @adapter.fire(:quiet, reverse: true)
        @adapter.fire(:shutdown, reverse: true)
      rescue => e
        @logger.error("courier-sidecar: lifecycle events failed: #{e.class}: #{e.message}")
      end

      def beat_loop
        @adapter.fire(:heartbeat)
        until @stopping
          @lock.synchronize { @wake.wait(@lock, @beat_seconds) unless @stopping }
          @adapter.fire(:beat, oneshot: false) unless @stopping
        end
      rescue => e
        @logger.error("courier-sidecar: beat events failed: #{e.class}: #{e.message}")
      end
    end

    # Tells the lifecycle when Puma's server begins to stop (graceful or not),
    # in single and cluster mode alike (each worker runs its own server).
    module PumaStopHook
      def stop(*)
        Lifecycle.current&.stopping!
        super
      end

      def halt(*)
        Lifecycle.current&.stopping!
        super
      end
    end
  end
end
