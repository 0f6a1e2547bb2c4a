# frozen_string_literal: true

module Courier
  module Sidecar
    # Sidekiq::JobLogger#prepare without the start/done lines: sets the
    # thread's log context (class, jid, bid, tags) so the app's own
    # `Sidekiq.logger` lines carry it, and honours a per-job "log_level".
    # The per-job start/done/fail lines are the dispatcher's job.
    module JobContext
      module_function

      def wrap(job)
        context = {class: job["display_class"] || job["wrapped"] || job["class"], jid: job["jid"]}
        context[:bid] = job["bid"] if job.key?("bid")
        context[:tags] = job["tags"] if job.key?("tags")
        Thread.current[:sidekiq_context] = context

        level = job["log_level"]
        logger = ::Sidekiq.logger
        if level && logger.respond_to?(:log_at)
          logger.log_at(level) { yield }
        else
          yield
        end
      ensure
        Thread.current[:sidekiq_context] = nil
      end
    end
  end
end
