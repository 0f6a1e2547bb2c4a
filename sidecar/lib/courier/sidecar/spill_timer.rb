# frozen_string_literal: true

module Courier
  module Sidecar
    # Watches the streams that have jobs not yet started while their Puma
    # thread may be busy running one of them itself (Stream::Run#check): once
    # that job has run `after` seconds with others waiting behind it, those
    # go to the job threads, so a slow job delays the others by `after` at
    # most and quick jobs never pay a thread hand-off. It also answers a
    # stream's queued jobs when the process stops and notices a client that
    # went away, which the busy Puma thread cannot.
    #
    # One thread per serving process, asleep while no stream is watched and
    # ticking every `after` seconds while one is (and a little longer): its
    # cost is per tick, not per job or stream. Started in the process that first uses it (threads do not
    # survive fork).
    class SpillTimer
      def initialize(after)
        raise ArgumentError, "spill delay must be positive" unless after.is_a?(Numeric) && after.positive?

        @after = after
        @lock = Mutex.new
        @pid = nil
      end

      # Watches `run` until it has spilled or has nothing left waiting. Wakes
      # the timer only when it sleeps; while it ticks, the next tick sees it.
      def watch(run)
        @lock.synchronize do
          start_here
          @runs << run
          @wake.signal if @idle
        end
      end

      private

      # Under @lock; fresh primitives and thread in each process.
      def start_here
        return if @pid == Process.pid

        @runs = []
        @idle = false
        @wake = ConditionVariable.new
        @pid = Process.pid
        Thread.new { tick }.name = "courier.spill-timer"
      end

      # Keeps ticking this many empty ticks before it sleeps: under load,
      # streams come back to back and each would otherwise wake it (a GVL
      # hand-off that costs more than a tick).
      LINGER_TICKS = 50

      def tick
        empty = 0
        loop do
          runs = @lock.synchronize do
            empty = @runs.empty? ? empty + 1 : 0
            if empty > LINGER_TICKS
              @idle = true
              @wake.wait(@lock) while @runs.empty?
              @idle = false
              empty = 0
            end
            @wake.wait(@lock, @after)
            @runs.dup
          end
          now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          settled = runs.select { |run| run.check(now, @after) }
          @lock.synchronize { @runs -= settled } unless settled.empty?
        end
      rescue Exception => e # rubocop:disable Lint/RescueException -- logged; the streams still end (their Puma threads run the jobs)
        warn("courier-sidecar: spill timer stopped: #{e.class}: #{e.message}")
      end
    end
  end
end
