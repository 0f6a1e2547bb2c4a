# frozen_string_literal: true

# Does nothing: measures the per-job overhead of whatever runs it.
class NoopJob
  include Sidekiq::Job

  def perform(*); end
end
