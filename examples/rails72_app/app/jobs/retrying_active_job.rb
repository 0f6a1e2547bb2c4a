# frozen_string_literal: true

# ActiveJob retry_on / discard_on / callbacks. retry_on re-enqueues a new
# job through the sidekiq adapter (into Redis's schedule set) and the run
# counts as a success for Sidekiq; discard_on drops it after its block.
class RetryingActiveJob < ApplicationJob
  class Retryable < StandardError; end
  class Discardable < StandardError; end

  retry_on Retryable, wait: 30.seconds, attempts: 3
  discard_on(Discardable) do |job, error|
    Event.create!(kind: "discarded", jid: job.provider_job_id, job_class: job.class.name, detail: error.message)
  end
  after_perform do |job|
    Event.create!(kind: "after_perform", jid: job.provider_job_id, job_class: job.class.name)
  end

  def perform(mode)
    case mode
    when "retry" then raise Retryable, "try again later"
    when "discard" then raise Discardable, "not worth it"
    else record_run(mode)
    end
  end
end
