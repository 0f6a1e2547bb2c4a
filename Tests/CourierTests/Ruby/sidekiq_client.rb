# frozen_string_literal: true
# The real Sidekiq 6.4.1 client and API, driven by the Swift tests.
# Usage: ruby sidekiq_client.rb 'RUBY CODE'  — evaluates the code with
# Sidekiq (client + API) and ActiveJob's :sidekiq adapter loaded against
# REDIS_URL, and prints the result as JSON on the last line of stdout.
require "json"
require "sidekiq"
require "sidekiq/api"
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
Sidekiq.logger.level = Logger::WARN

class NoopJob
  include Sidekiq::Worker
  def perform(*) = nil
end

class CriticalJob
  include Sidekiq::Worker
  sidekiq_options queue: "critical"
  def perform(*) = nil
end

begin
  require "active_job"
  ActiveJob::Base.queue_adapter = :sidekiq
  ActiveJob::Base.logger = Logger.new(nil)
  class AjNoopJob < ActiveJob::Base
    queue_as :default
    def perform(*) = nil
  end
rescue LoadError
  # ActiveJob is optional for callers that do not use it.
end

result = eval(ARGV.fetch(0)) # rubocop:disable Security/Eval
puts JSON.generate(result)
