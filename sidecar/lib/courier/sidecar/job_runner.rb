# frozen_string_literal: true

require "sidekiq"
require "sidekiq/exception_handler"

module Courier
  module Sidecar
    # Runs one job the way Sidekiq 6.4.1's Processor#dispatch/#process does,
    # minus everything the dispatcher owns (fetch, retry bookkeeping, stats,
    # Redis writes):
    #
    #   log context → Rails reloader (executor: code reloading, query cache,
    #   connections returned to the pool) → class, new, jid= → server
    #   middleware chain → perform(*args)
    #
    # The ActiveJob wrapper is an ordinary Sidekiq::Worker, so its own
    # `perform` calls ActiveJob::Base.execute(job_data.merge("provider_job_id"
    # => jid)) exactly as under Sidekiq; callbacks, retry_on, discard_on and
    # argument deserialisation all happen inside ActiveJob.
    class JobRunner
      include ::Sidekiq::ExceptionHandler

      # What happened; `error` is set when the job raised.
      Result = Struct.new(:error, :job_class)
      OK = Result.new(nil, nil).freeze

      # reloader: responds to call(&block) like Sidekiq::Rails::Reloader.
      # reresolve: look the class up again inside the reloader (code reloading
      # may have replaced the constant since the pre-check).
      def initialize(resolver:, reloader:, reresolve: false)
        @resolver = resolver
        @reloader = reloader
        @reresolve = reresolve
      end

      # job: the parsed payload (already validated by the App), klass: its
      # pre-resolved class, queue: the queue it was fetched from.
      def call(job, klass, queue)
        JobContext.wrap(job) do
          @reloader.call do
            klass = @resolver.resolve(job["class"]) if @reresolve
            worker = klass.new
            worker.jid = job["jid"]
            ::Sidekiq.server_middleware.invoke(worker, job, queue) do
              worker.perform(*job["args"])
            end
          end
        end
        OK
      rescue Exception => e # rubocop:disable Lint/RescueException -- Sidekiq's retry layer rescues Exception too
        # Same context string Sidekiq passes, so error trackers group alike.
        handle_exception(e, {context: "Job raised exception", job: job})
        Result.new(e, klass)
      end
    end
  end
end
