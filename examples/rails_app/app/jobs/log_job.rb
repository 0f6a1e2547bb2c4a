# frozen_string_literal: true

# Logs one line through Sidekiq.logger and one through Rails.logger (the
# sidecar's log-context tests read them), then raises if asked to.
class LogJob
  include Sidekiq::Job

  def perform(note, raise_after = false)
    Sidekiq.logger.info("log job says #{note}")
    Rails.logger.info("log job says #{note} to rails")
    raise ArgumentError, "log job failed after logging" if raise_after
  end
end
