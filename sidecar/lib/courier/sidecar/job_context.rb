# frozen_string_literal: true

module Courier
  module Sidecar
    # Sidekiq::JobLogger#prepare without the start/done lines: sets the
    # thread's log context (class, jid, bid, tags, tenant) so the app's own
    # `Sidekiq.logger` lines carry it, and honours a per-job "log_level".
    # The per-job start/done/fail lines are the dispatcher's job.
    #
    # The tenant is also a tag of `Rails.logger` while the job runs
    # ("[tenant=acme] …") when that logger is an ActiveSupport::TaggedLogging
    # (or a Rails 7.1+ BroadcastLogger around one). push_tags/pop_tags rather
    # than `tagged { }`: a BroadcastLogger forwards `tagged` with its block to
    # each of its loggers, which would run the job once per logger. A job
    # without a tenant costs nothing here beyond two Hash lookups.
    module JobContext
      module_function

      # tenant: the dispatcher's (Courier-Tenant, an entry's "tenant"), else
      # the payload's (JobContext.tenant).
      def wrap(job, tenant = nil)
        tenant ||= tenant(job)
        context = {class: job["display_class"] || job["wrapped"] || job["class"], jid: job["jid"]}
        context[:bid] = job["bid"] if job.key?("bid")
        context[:tags] = job["tags"] if job.key?("tags")
        context[:tenant] = tenant if tenant
        Thread.current[:sidekiq_context] = context
        tagged = tenant && push_rails_tag(tenant)

        level = job["log_level"]
        logger = ::Sidekiq.logger
        if level && logger.respond_to?(:log_at)
          logger.log_at(level) { yield }
        else
          yield
        end
      ensure
        tagged&.pop_tags(1)
        Thread.current[:sidekiq_context] = nil
      end

      # The payload's tenant: its "tenant" string, else its first tag (as the
      # dispatcher's log lines and metrics have it); nil if neither, or empty.
      def tenant(job)
        tenant = job["tenant"]
        unless tenant.is_a?(String)
          tags = job["tags"]
          tenant = tags.first if tags.is_a?(Array)
        end
        tenant if tenant.is_a?(String) && !tenant.empty?
      end

      # Rails.logger once it carries the tag, or nil when it cannot be tagged.
      def push_rails_tag(tenant)
        return nil unless defined?(::Rails) && ::Rails.respond_to?(:logger)

        logger = ::Rails.logger
        return nil unless logger.respond_to?(:push_tags) && logger.respond_to?(:pop_tags)

        logger.push_tags("tenant=#{tenant}")
        logger
      end
    end
  end
end
