# frozen_string_literal: true

# Always raises; its sidekiq_retry_in answer depends on the first argument,
# so each answer of the protocol (seconds, :kill, :discard, default) can be
# observed. Called as Sidekiq 7 does: (count, exception, job).
class RetryInJob
  include Sidekiq::Job

  class Failed < StandardError; end

  sidekiq_retry_in do |count, _error, job|
    case job["args"].first
    when "seconds" then 10 * (count + 1)
    when "kill" then :kill
    when "discard" then :discard
    when "broken" then raise "sidekiq_retry_in itself failed"
    end
  end

  def perform(mode)
    raise Failed, "failing on purpose (#{mode})"
  end
end
