# frozen_string_literal: true

# An ActiveJob that declares Sidekiq's retry hooks (ActiveJob classes get
# sidekiq_options/sidekiq_retry_in from Sidekiq's railtie); the sidecar looks
# them up on the wrapped class, as Sidekiq 7.1.3+ does.
class ActiveRetryInJob < ApplicationJob
  class Failed < StandardError; end

  sidekiq_retry_in { |count, _error| 100 + count }
  sidekiq_retries_exhausted do |job, error|
    Event.create!(kind: "exhausted", jid: job["jid"], job_class: job["wrapped"], detail: "#{error.class}: #{error.message}")
  end

  def perform
    raise Failed, "active job failed"
  end
end
