# frozen_string_literal: true

module Courier
  module Sidecar
    # The job slots of one serving process and the threads behind them.
    # Streamed jobs (POST /v1/jobs/stream) run on a slot: `size` of them at
    # once in the whole process, whoever runs them. A stream's own Puma
    # thread borrows a free slot to run its jobs one after another (#try_take,
    # no hand-off: the cheapest way to run quick jobs under the GVL); jobs
    # that must not wait for it go to the pool's threads (#submit), which run
    # each on a slot as soon as one is free, in FIFO order. So `size` bounds
    # the jobs running at once (what the app's connection pools are sized
    # for) however many streams are open.
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
          @ready.signal if @free.positive?
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
        @lock.synchronize { release }
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

      private

      # Under @lock. A Mutex and ConditionVariable of the parent process are
      # useless after fork, hence the fresh ones.
      def start_here
        return if @pid == Process.pid

        @tasks = []
        @free = @size
        @stopping = false
        @ready = ConditionVariable.new
        @threads = Array.new(@size) do |i|
          Thread.new { work }.tap { |t| t.name = "courier.job-#{i + 1}" }
        end
        @pid = Process.pid
      end

      # Under @lock: a slot is free again; one waiting task may run on it.
      def release
        @free += 1
        @ready.signal unless @tasks.empty?
      end

      # A task answers its own errors (see Stream); this rescue only keeps a
      # bug from shrinking the pool.
      def work
        loop do
          task = @lock.synchronize do
            @ready.wait(@lock) while (@tasks.empty? || @free.zero?) && !@stopping
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
            @lock.synchronize { release }
          end
        end
      end
    end
  end
end
