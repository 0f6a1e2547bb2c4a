# frozen_string_literal: true

module CourierExample
  # Server middleware that proves the sidecar runs the app's Sidekiq server
  # chain: it leaves "<queue>:<jid>" in a thread-local that jobs copy into the
  # rows they write.
  class RecordingMiddleware
    KEY = :courier_example_middleware
    LOCK = Mutex.new
    @invocations = 0

    class << self
      # How many jobs went through the chain in this process (tests use it to
      # prove a refused request ran nothing).
      def invocations
        LOCK.synchronize { @invocations }
      end

      def current
        Thread.current[KEY]
      end

      def count!
        LOCK.synchronize { @invocations += 1 }
      end
    end

    def call(_worker, job, queue)
      self.class.count!
      Thread.current[KEY] = "#{queue}:#{job["jid"]}"
      yield
    ensure
      Thread.current[KEY] = nil
    end
  end
end
