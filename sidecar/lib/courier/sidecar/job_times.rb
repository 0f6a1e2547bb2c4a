# frozen_string_literal: true

module Courier
  module Sidecar
    # How long each job class has been taking lately (an exponentially
    # weighted mean per class: ActiveJob jobs by their wrapped class), so a
    # stream can tell the jobs worth running on its own Puma thread (quick
    # ones: no thread hand-off, which costs more than a no-op job here) from
    # those that go straight to the job threads (slow lately).
    #
    # Read and written by every thread that runs jobs, without a lock: under
    # CRuby's GVL each Hash read and write is atomic, and a lost update only
    # skews one estimate a little.
    class JobTimes
      WEIGHT = 0.25 # of the newest run
      MAX_CLASSES = 2_000 # past this many names (a hostile payload stream), forget them all

      def initialize(quick_below:)
        @quick_below = quick_below
        @means = {}
      end

      # Quick lately, or not seen yet: a new class gets the cheap path, and
      # if it turns out slow the stream's SpillTimer moves the jobs behind it.
      def quick?(name)
        mean = @means[name]
        mean.nil? || mean < @quick_below
      end

      def record(name, seconds)
        mean = @means[name]
        if mean
          @means[name] = mean + (WEIGHT * (seconds - mean))
        else
          @means.clear if @means.size >= MAX_CLASSES
          @means[name] = seconds
        end
      end

      # The name a job is timed under.
      def self.name_of(job)
        wrapped = job["wrapped"]
        wrapped.is_a?(String) ? wrapped : job["class"]
      end
    end
  end
end
