# frozen_string_literal: true

require_relative "../../lib/courier_example/recording_middleware"
require "courier/unique_jobs"

# Benchmarks compare against Sidekiq at WARN too; tests quieten it.
Sidekiq.logger.level = Logger.const_get(ENV.fetch("SIDEKIQ_LOG_LEVEL", "INFO").upcase)

redis = {url: ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379/0")}

Sidekiq.configure_client do |config|
  config.redis = redis
end

# Unique jobs (sidekiq_options unique_for:, docs/unique-jobs.md): the client
# middleware in both chains; the sidecar releases the locks.
Courier::UniqueJobs.enable!

# Runs only in a Sidekiq server process — or in the Courier sidecar, which
# boots the app in server mode for exactly this reason.
Sidekiq.configure_server do |config|
  config.redis = redis
  config.server_middleware do |chain|
    chain.add CourierExample::RecordingMiddleware
  end
  # A job that died (retries exhausted, or retry: false): record it.
  config.death_handlers << lambda do |job, error|
    Event.create!(kind: "death", jid: job["jid"], job_class: job["wrapped"] || job["class"],
                  detail: "#{error.class}: #{error.message}")
  end
end
