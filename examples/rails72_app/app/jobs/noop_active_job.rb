# frozen_string_literal: true

# Does nothing, through ActiveJob: measures the wrapper's overhead.
class NoopActiveJob < ApplicationJob
  def perform(*); end
end
