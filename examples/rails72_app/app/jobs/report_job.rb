# frozen_string_literal: true

# ActiveJob through Rails 7.2's :sidekiq adapter, with Sidekiq options on the
# ActiveJob class itself (Sidekiq's railtie adds sidekiq_options to it): the
# client merges them into the payload, so Sidekiq's own retries (not
# ActiveJob's) apply.
class ReportJob < ApplicationJob
  queue_as :reports
  sidekiq_options retry: 1, backtrace: true

  class Unavailable < StandardError; end

  def perform(name, fail: false)
    raise Unavailable, "report source unavailable" if fail

    record_run(name)
  end
end
