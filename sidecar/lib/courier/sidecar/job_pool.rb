# frozen_string_literal: true

module Courier
  module Sidecar
    # The job threads of one serving process: streamed jobs
    # (POST /v1/jobs/stream) run here, so that a stream's Puma thread only
    # writes answers and its jobs run side by side. Shared by every stream
    # of the process; when all threads are busy, jobs wait in FIFO order
    # (each stream adds at most its own job count).
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

      # Runs the block on a job thread, as soon as one is free.
      def submit(&task)
        @lock.synchronize { start_here } unless @pid == Process.pid
        @queue << task
      end

      # Lets the threads end once the jobs already queued have run (tests;
      # a serving process just exits).
      def stop!
        threads = @lock.synchronize do
          next [] unless @pid == Process.pid

          @pid = nil
          @threads.each { @queue << nil }
          @threads
        end
        threads.each(&:join)
      end

      # Jobs waiting for a thread (not counting the running ones).
      def backlog
        @pid == Process.pid ? @queue.size : 0
      end

      private

      def start_here
        return if @pid == Process.pid

        @queue = Queue.new
        @threads = Array.new(@size) do |i|
          Thread.new { work }.tap { |t| t.name = "courier.job-#{i + 1}" }
        end
        @pid = Process.pid
      end

      # A task answers its own errors (see Stream); this rescue only keeps a
      # bug from shrinking the pool.
      def work
        while (task = @queue.pop)
          begin
            task.call
          rescue Exception => e # rubocop:disable Lint/RescueException -- a job thread must outlive anything a task raises
            @logger.error("courier-sidecar: job thread: #{e.class}: #{e.message}")
          end
        end
      end
    end
  end
end
