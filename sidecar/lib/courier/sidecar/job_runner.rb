# frozen_string_literal: true

module Courier
  module Sidecar
    # Runs one job the way Sidekiq's Processor#dispatch/#process does (6.4.1
    # and 7.3.2 alike), minus everything the dispatcher owns (fetch, retry
    # bookkeeping, stats, Redis writes):
    #
    #   log context (and tenant) → trace context (Trace) → Rails reloader (executor: code reloading, query cache,
    #   connections returned to the pool) → class, new, jid= (and 7.x's
    #   _context) → server middleware chain → perform(*args)
    #
    # The ActiveJob wrapper is an ordinary Sidekiq::Worker, so its own
    # `perform` calls ActiveJob::Base.execute(job_data.merge("provider_job_id"
    # => jid)) exactly as under Sidekiq; callbacks, retry_on, discard_on and
    # argument deserialisation all happen inside ActiveJob.
    #
    # The run is registered in RunningJobs under its jid, so a cancel can
    # interrupt it (Sidekiq::Shutdown, Courier::JobTimeout, Courier::JobCancelled).
    #
    # A payload with a "unique_key" (Courier::UniqueJobs::ClientMiddleware)
    # has its lock released around the chain (UniqueJobs::Release): before
    # it for unique_until "start", after it returned for "success". Both
    # happen outside #interruptible, so a cancel never cuts a Redis call short.
    class JobRunner
      # What happened; `error` is set when the job raised, `job_class` is the
      # class it ran as (nil when it did not resolve), `interrupted` (a
      # RunningJobs reason Symbol) when a cancel interrupted it.
      Result = Struct.new(:error, :job_class, :interrupted)

      # reloader: responds to call(&block) like Sidekiq::Rails::Reloader.
      # reresolve: look the class up again inside the reloader (code reloading
      # may have replaced the constant since the pre-check).
      # context: what Sidekiq 7's Job#interrupted? asks (responds to stopping?).
      # unique: a UniqueJobs::Release, or nil to leave unique locks alone.
      def initialize(resolver:, reloader:, adapter:, running:, context:, reresolve: false, unique: nil)
        @unique = unique
        @resolver = resolver
        @reloader = reloader
        @adapter = adapter
        @running = running
        @context = context
        @reresolve = reresolve
      end

      # job: the parsed payload (already validated by the App), queue: the
      # queue it was fetched from; tenant, traceparent: the dispatcher's for
      # this job (Delivery), nil to use the payload's. A class that does not
      # resolve is the job's failure (NameError, Courier::NotAJobClass) and
      # nothing of the app runs.
      def call(job, queue, tenant = nil, traceparent = nil)
        klass = resolve(job)
        return Result.new(klass.error, nil, nil) if klass.is_a?(JobResolver::Unresolvable)

        @adapter.enter_job_thread
        entry = nil
        @running.run(job["jid"]) do |e|
          entry = e
          klass = perform(job, klass, queue, tenant, traceparent)
        end
        Result.new(nil, klass, nil)
      rescue Exception => e # rubocop:disable Lint/RescueException -- Sidekiq's retry layer rescues Exception too
        e = e.error if e.is_a?(JobResolver::Unresolvable) # re-resolved after a code reload
        # A cancel that came as the job ended with its own error does not hide that error.
        reason = entry&.reason if RunningJobs.interruption?(e)
        # Same context string Sidekiq passes, so error trackers group alike.
        @adapter.handle_exception(e, {context: "Job raised exception", job: job}) unless reason
        Result.new(e, klass, reason)
      end

      private

      # The class, or the Unresolvable (reported as Sidekiq reports its NameError).
      def resolve(job)
        @resolver.resolve(job["class"])
      rescue JobResolver::Unresolvable => e
        @adapter.handle_exception(e.error, {context: "Job raised exception", job: job})
        e
      end

      # Returns the class the job ran as (re-resolved after a code reload).
      def perform(job, klass, queue, tenant, traceparent)
        traceparent = Trace.traceparent(job, traceparent)
        JobContext.wrap(job, tenant) do
          if traceparent
            Trace.wrap(job, queue, traceparent, @adapter) { klass = run(job, klass, queue) }
          else
            klass = run(job, klass, queue)
          end
        end
        klass
      end

      def run(job, klass, queue)
        @reloader.call do
          klass = @resolver.resolve(job["class"]) if @reresolve
          worker = klass.new
          worker.jid = job["jid"]
          worker._context = @context if worker.respond_to?(:_context=)
          key = job["unique_key"]
          if key.is_a?(String) && @unique
            @unique.around(job, key) { invoke(worker, job, queue) }
          else
            invoke(worker, job, queue)
          end
        end
        klass
      end

      def invoke(worker, job, queue)
        @running.interruptible do
          @adapter.server_middleware.invoke(worker, job, queue) do
            worker.perform(*job["args"])
          end
        end
      end
    end
  end
end
