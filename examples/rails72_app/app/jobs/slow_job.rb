# frozen_string_literal: true

# Sleeps, then records its run (timeouts, busy executors). Uses the old
# Sidekiq::Worker name on purpose.
class SlowJob
  include Sidekiq::Worker

  def perform(seconds, note = nil)
    sleep(seconds.to_f)
    JobRun.create!(jid: jid, job_class: self.class.name, arg: note,
                   middleware: CourierExample::RecordingMiddleware.current)
  end
end
