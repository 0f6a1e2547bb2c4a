# frozen_string_literal: true

# Works in small steps for N seconds, then records its run. Shows what an
# interruption (Courier's cancel: Sidekiq::Shutdown, Courier::JobTimeout,
# Courier::JobCancelled) does: the run stops mid-way, `ensure` still runs,
# and `rescue => e` does not catch it.
class LongJob
  include Sidekiq::Job

  def perform(seconds, note = nil)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds.to_f
    sleep 0.02 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    JobRun.create!(jid: jid, job_class: self.class.name, arg: note,
                   middleware: CourierExample::RecordingMiddleware.current)
  rescue => e
    Event.create!(kind: "rescued", jid: jid, job_class: self.class.name, detail: e.class.name)
    raise
  ensure
    Event.create!(kind: "ensure", jid: jid, job_class: self.class.name, detail: note)
  end
end
