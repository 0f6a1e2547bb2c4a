# frozen_string_literal: true

require_relative "boot"

require "rails"
require "active_record/railtie"
require "active_job/railtie"
Bundler.require(*Rails.groups)

Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

module CourierExample
  # A small Rails 6.1 app whose jobs exercise every path of the Courier
  # sidecar (plain Sidekiq jobs, ActiveJob, retries, exhaustion).
  class Application < Rails::Application
    config.load_defaults 6.1
    config.root = File.expand_path("..", __dir__)
    config.eager_load = ENV.fetch("EAGER_LOAD", "1") == "1"
    config.cache_classes = config.eager_load
    config.active_job.queue_adapter = :sidekiq
    config.logger = ActiveSupport::Logger.new(ENV["RAILS_LOG"] == "stdout" ? $stdout : File::NULL)
    config.log_level = :warn
    config.secret_key_base = "courier-example-not-secret"
  end
end
