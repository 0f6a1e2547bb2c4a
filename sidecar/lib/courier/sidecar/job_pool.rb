# frozen_string_literal: true

module Courier
  module Sidecar
    # The job slots of one serving process and the threads behind them.
    # Every job runs on a slot: `size` of them at once in the whole process,
    # whoever runs them. A /v1/jobs (or batch) job runs on its Puma thread
    # once that thread holds a slot (#hold); streamed jobs (POST
    # /v1/jobs/stream) as below. A stream's own Puma
    # thread borrows a free slot to run its jobs one after another (#try_take,
    # no hand-off: the cheapest way to run quick jobs under the GVL); jobs
    # that must not wait for it go to the pool's threads (#submit), which run
    # each on a slot as soon as one is free, in FIFO order. So `size` bounds
    # the jobs running at once (what the app's connection pools are sized
    # for) however many streams are open.
    #
    # Threads are made when a task finds no idle one, up to `size`, and then
    # kept: a process whose streamed jobs mostly run inline on their Puma
    # threads never pays for `size` idle threads (each one's stacks are RSS,
    # and every GC scans them).
    #
    # Threads do not survive fork, so the CLI starts the pool in each serving
    # process (a Puma worker, or the single-mode process); a pool used in a
    # process where it was not started (tests, or a fork) starts itself.
    class JobPool
      attr_reader :size

      def initialize(size, logger:)
        raise ArgumentError, "job pool size must be at least 1" unless size.is_a?(Integer) && size.positive?

        @size = size
        @logger = logger
        @lock = Mutex.new
        @pid = nil
      end

      # In the serving process, after fork.
      def start!
        @lock.synchronize { start_here }
        self
      end

      # Runs the block on a job thread, on a slot, as soon as one is free.
      def submit(&task)
        @lock.synchronize do
          start_here
          @tasks << task
          wake
        end
      end

      # Takes a slot for the calling thread if one is free and no task waits
      # for one (a borrower never jumps the queue); pair with #give_back.
      def try_take
        @lock.synchronize do
          start_here
          next false unless @free.positive? && @tasks.empty?

          @free -= 1
          true
        end
      end

      # Returns a slot taken by #try_take.
      def give_back
        @lock.synchronize do
          @free += 1
          wake
          @slot_freed.signal if @holders.positive?
        end
      end

      # Runs the block on the calling thread on a slot, waiting for one to
      # free: so a dispatcher holding more jobs than `size` (jobs in transit
      # have tokens of their own) never runs more than `size` here at once,
      # and the app's connection pools, sized for `size`, suffice. A holder
      # does not queue behind tasks already waiting: it takes the first slot
      # it sees free. Given a Wait, the wait ends early once #abandon is
      # called on it (a cancel of the waiting job): then the block never runs
      # and hold returns Wait::ABANDONED.
      def hold(wait = nil)
        @lock.synchronize do
          start_here
          until @free.positive?
            return Wait::ABANDONED if wait&.abandoned

            @holders += 1
            begin
              @slot_freed.wait(@lock)
            ensure
              @holders -= 1
            end
          end
          @free -= 1
        end
        begin
          yield
        ensure
          give_back
        end
      end

      # A #hold that #abandon may end before it gets a slot.
      class Wait
        ABANDONED = Object.new.freeze
        attr_accessor :abandoned
      end

      # Ends the #hold waiting with `wait`, if it still waits: it returns
      # without running its block. Any thread; holders all wake to look.
      def abandon(wait)
        @lock.synchronize do
          wait.abandoned = true
          @slot_freed&.broadcast
        end
      end

      # Lets the threads end once the tasks already queued have run (tests;
      # a serving process just exits).
      def stop!
        threads = @lock.synchronize do
          next [] unless @pid == Process.pid

          @pid = nil
          @stopping = true
          @ready.broadcast
          @threads
        end
        threads.each(&:join)
      end

      # Tasks waiting for a slot (not counting the running ones).
      def backlog
        @lock.synchronize { @pid == Process.pid ? @tasks.size : 0 }
      end

      # Job threads made so far in this process.
      def threads
        @lock.synchronize { @pid == Process.pid ? @threads.size : 0 }
      end

      private

      # Under @lock. A Mutex and ConditionVariable of the parent process are
      # useless after fork, hence the fresh ones.
      def start_here
        return if @pid == Process.pid

        @tasks = []
        @free = @size
        @stopping = false
        @ready = ConditionVariable.new
        @threads = []
        @idle = 0 # threads waiting in #work
        @slot_freed = ConditionVariable.new
        @holders = 0 # threads waiting in #hold
        @pid = Process.pid
      end

      # Under @lock, after a task came or a slot freed: every task that can
      # start now (one per free slot) has a thread to start it, an idle one
      # woken or a new one (never more than `size`: the slots bound them).
      # A thread woken but not yet running still counts as idle, so a second
      # task arriving meanwhile gets a new thread, not a lost signal.
      def wake
        runnable = [@tasks.size, @free].min
        return unless runnable.positive?

        @ready.signal if @idle.positive?
        return unless runnable > @idle && @threads.size < @size

        @threads << Thread.new { work }.tap { |t| t.name = "courier.job-#{@threads.size + 1}" }
      end

      # A task answers its own errors (see Stream); this rescue only keeps a
      # bug from shrinking the pool.
      def work
        loop do
          task = @lock.synchronize do
            while (@tasks.empty? || @free.zero?) && !@stopping
              @idle += 1
              begin
                @ready.wait(@lock)
              ensure
                @idle -= 1
              end
            end
            next nil if @tasks.empty?

            @free -= 1
            @tasks.shift
          end
          return unless task

          begin
            task.call
          rescue Exception => e # rubocop:disable Lint/RescueException -- a job thread must outlive anything a task raises
            @logger.error("courier-sidecar: job thread: #{e.class}: #{e.message}")
          ensure
            # No wake-up: this thread takes the next task on the slot it frees
            # (a thread waiting in #hold may take it first).
            @lock.synchronize do
              @free += 1
              @slot_freed.signal if @holders.positive?
            end
          end
        end
      end
    end
  end
end
