# frozen_string_literal: true

# Raises the message it is given; no retry hooks (default backoff).
class FailingJob
  include Sidekiq::Job

  class Boom < StandardError; end

  def perform(message)
    raise Boom, message
  end
end
