# frozen_string_literal: true

# A unique ActiveJob job: sidekiq_options on an ActiveJob class reach the
# Sidekiq payload, so unique_for works here too (keyed by its arguments).
# mode "flaky": retry_on re-enqueues it, handing the lock to the new job.
class UniqueActiveJob < ApplicationJob
  class Flaky < StandardError; end

  sidekiq_options unique_for: 60
  retry_on Flaky, wait: 30.seconds, attempts: 3

  def perform(note, mode = "ok")
    raise Flaky, "try again" if mode == "flaky"

    record_run(note)
  end
end
