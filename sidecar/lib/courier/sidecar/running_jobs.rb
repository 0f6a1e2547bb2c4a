# frozen_string_literal: true

module Courier
  module Sidecar
    # The jobs running in this process, by jid, so a cancel can interrupt the
    # right thread with Thread#raise.
    #
    # Thread#raise is asynchronous, so a raise must never reach a thread after
    # its job ended (it would hit Puma's code, or the next job), nor the Rails
    # executor's own set-up and clean-up (connection check-in, the load
    # interlock), which the process keeps using. Hence:
    #   * #run registers the job with interruptions deferred
    #     (handle_interrupt :never); only the job's own code, inside
    #     #interruptible, lets them through (:immediate): one raised earlier
    #     is delivered as the job's code begins;
    #   * cancel raises only while holding the lock and while the jid is still
    #     registered; the job deregisters under the same lock, then discards
    #     an interruption that was sent but not yet delivered.
    #
    # A stream's jobs wait here as Queued slots until a job thread is free
    # (#enqueue). A cancel of a queued jid answers it at once (its on_cancel
    # callback) and it never starts; #claim and #drop settle a slot under the
    # same lock, so a slot is started, cancelled or dropped exactly once.
    class RunningJobs
      REASONS = {"shutdown" => :shutdown, "timeout" => :timeout, "cancel" => :cancel}.freeze
      # What a cancel may name: a jid as Sidekiq writes them, or any other token without spaces.
      JID = /\A\S{1,128}\z/

      # One running job; `reason` is set once it has been interrupted.
      Entry = Struct.new(:thread, :reason)

      # One job waiting for a job thread; state :queued until it is
      # :claimed (it starts), :cancelled or :dropped (it never starts).
      Queued = Struct.new(:jid, :state, :on_cancel)

      # Built here, not at load time: Sidekiq is loaded only after the app's
      # config/boot.rb (its Bundler setup) has run.
      def initialize
        @jobs = {}
        @queued = {}
        @lock = Mutex.new
        @deferred = {::Courier::Interruption => :never, ::Sidekiq::Shutdown => :never}.freeze
        @allowed = {::Courier::Interruption => :immediate, ::Sidekiq::Shutdown => :immediate}.freeze
      end

      # Runs the block as the job `jid` with interruptions deferred, yielding
      # its Entry: afterwards, entry.reason says whether a cancel was sent.
      def run(jid)
        entry = Entry.new(Thread.current, nil)
        Thread.handle_interrupt(@deferred) do
          @lock.synchronize { @jobs[jid] = entry } if jid
          begin
            yield entry
          ensure
            @lock.synchronize { @jobs.delete(jid) if @jobs[jid].equal?(entry) } if jid
            discard_undelivered
          end
        end
      end

      # Inside #run: the part of the job a cancel may interrupt (its own code).
      def interruptible(&block)
        Thread.handle_interrupt(@allowed, &block)
      end

      # Whether `error` is what a cancel raised (not the job's own error).
      def self.interruption?(error)
        error.is_a?(::Courier::Interruption) || error.is_a?(::Sidekiq::Shutdown)
      end

      # Interrupts the running job `jid`, or answers the queued one (its
      # on_cancel gets the reason and the exception it would have raised);
      # true if it was running or queued here.
      def cancel(jid, reason)
        queued = nil
        @lock.synchronize do
          entry = @jobs[jid]
          if entry && entry.reason.nil?
            entry.reason = reason
            entry.thread.raise(exception_for(reason, jid))
            return true
          end
          queued = @queued.delete(jid)
          return false unless queued

          queued.state = :cancelled
        end
        # Outside the lock: the callback takes its stream's own lock.
        queued.on_cancel&.call(reason, exception_for(reason, jid, started: false))
        true
      end

      # Registers a job that waits for a job thread; `on_cancel` is called
      # with (reason, exception) if a cancel names it before it starts.
      def enqueue(jid, &on_cancel)
        slot = Queued.new(jid, :queued, on_cancel)
        @lock.synchronize { @queued[jid] = slot } if jid
        slot
      end

      # The job thread is about to start the queued job: true unless it was
      # cancelled or dropped (then it must not start).
      def claim(slot)
        settle(slot, :claimed)
      end

      # The job will not start (its stream's client went away, or the
      # process is stopping): true if it was still queued.
      def drop(slot)
        settle(slot, :dropped)
      end

      def size
        @lock.synchronize { @jobs.size }
      end

      def queued_size
        @lock.synchronize { @queued.size }
      end

      private

      def settle(slot, state)
        @lock.synchronize do
          return false unless slot.state == :queued

          slot.state = state
          @queued.delete(slot.jid) if slot.jid && @queued[slot.jid].equal?(slot)
          true
        end
      end

      def exception_for(reason, jid, started: true)
        before = started ? "" : " before it started"
        case reason
        when :shutdown then ::Sidekiq::Shutdown.new("Courier gave up on job #{jid} at shutdown#{before}")
        when :timeout
          ::Courier::JobTimeout.new(started ? "job #{jid} ran past Courier's job timeout" : "Courier's job timeout for job #{jid} passed before it started")
        else ::Courier::JobCancelled.new("job #{jid} was cancelled#{before}")
        end
      end

      # An interruption raised just as the job ended is pending here; take it
      # so it is not delivered into whatever this thread runs next.
      def discard_undelivered
        # Only our two classes are ever held back here, so any pending one is ours.
        while Thread.pending_interrupt?
          begin
            Thread.handle_interrupt(@allowed) { Thread.pass }
          rescue ::Courier::Interruption, ::Sidekiq::Shutdown
            nil
          end
        end
      end
    end
  end
end
