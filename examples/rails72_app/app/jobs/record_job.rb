# frozen_string_literal: true

# Plain Sidekiq job: writes one row keyed by its jid (unique: a second run
# of the same job fails loudly).
class RecordJob
  include Sidekiq::Job

  def perform(note)
    JobRun.create!(jid: jid, job_class: self.class.name, arg: note,
                   middleware: CourierExample::RecordingMiddleware.current)
  end
end
