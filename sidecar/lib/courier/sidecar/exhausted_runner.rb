# frozen_string_literal: true

module Courier
  module Sidecar
    # Sidekiq 6.4.1's JobRetry#retries_exhausted, minus the morgue (the
    # dispatcher writes the dead set): the class's sidekiq_retries_exhausted
    # block with (job, exception), then every Sidekiq.death_handlers handler
    # with the same pair. Errors in either are reported to the error handlers
    # and swallowed, as Sidekiq does, so the answer is always "ok" once the
    # request itself was valid.
    #
    # A job whose class does not resolve (it failed with NameError) still
    # reaches the death handlers, without a class block, as in Sidekiq.
    class ExhaustedRunner
      def initialize(resolver:, reloader:, failure:, adapter:)
        @resolver = resolver
        @reloader = reloader
        @failure = failure
        @adapter = adapter
      end

      def call(job, job_class, death_only: false)
        error = RemoteErrorBuilder.build(job, @resolver)
        JobContext.wrap(job) do
          @reloader.call do
            run_exhausted_block(job, job_class, error) unless death_only || job_class.nil?
            run_death_handlers(job, error)
          end
        end
      end

      private

      def run_exhausted_block(job, job_class, error)
        klass = @failure.hook_class(job, job_class)
        block = klass.respond_to?(:sidekiq_retries_exhausted_block) && klass.sidekiq_retries_exhausted_block
        block&.call(job, error)
      rescue => e
        @adapter.handle_exception(e, {context: "Error calling retries_exhausted", job: job})
      end

      def run_death_handlers(job, error)
        @adapter.death_handlers.each do |handler|
          handler.call(job, error)
        rescue => e
          @adapter.handle_exception(e, {context: "Error calling death handler", job: job})
        end
      end
    end
  end
end
