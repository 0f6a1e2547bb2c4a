# frozen_string_literal: true

# Fails every time; when its retries are used up the exhausted hook records
# an event (and the app's death handler another).
class ExhaustedJob
  include Sidekiq::Job
  sidekiq_options retry: 1

  class Failed < StandardError; end

  sidekiq_retries_exhausted do |job, error|
    Event.create!(kind: "exhausted", jid: job["jid"], job_class: job["class"], detail: "#{error.class}: #{error.message}")
  end

  def perform(*)
    raise Failed, "always fails"
  end
end
