# frozen_string_literal: true

# Sidekiq 7 options on a plain job: its own queue, 2 retries, the first 5
# backtrace lines kept with the retry, and tags the Web UI shows.
class CriticalJob
  include Sidekiq::Job
  sidekiq_options queue: "critical", retry: 2, backtrace: 5, tags: ["billing"]

  class Declined < StandardError; end

  def perform(mode)
    raise Declined, "card declined" if mode == "fail"

    JobRun.create!(jid: jid, job_class: self.class.name, arg: mode,
                   middleware: CourierExample::RecordingMiddleware.current)
  end
end
