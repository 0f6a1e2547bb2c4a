# frozen_string_literal: true

class ApplicationJob < ActiveJob::Base
  # The row key for ActiveJob runs: Sidekiq's jid, which the wrapper hands
  # to ActiveJob as provider_job_id.
  def record_run(arg)
    JobRun.create!(jid: provider_job_id, job_class: self.class.name, arg: arg,
                   middleware: CourierExample::RecordingMiddleware.current)
  end
end
