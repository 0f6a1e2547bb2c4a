# frozen_string_literal: true

module CourierExample
  # A periodic enqueuer, as sidekiq-cron runs one: every N seconds it pushes a
  # RecordJob("tick-<pid>-<n>") through the ordinary Sidekiq client.
  module Ticker
    @thread = nil

    class << self
      def start(seconds)
        @stop = false
        @thread = Thread.new do
          n = 0
          until @stop
            sleep seconds
            RecordJob.perform_async("tick-#{Process.pid}-#{n += 1}") unless @stop
          end
        end
      end

      def stop
        @stop = true
        @thread&.wakeup
      rescue ThreadError
        nil # already finished
      end
    end
  end
end
