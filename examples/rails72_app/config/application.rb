# frozen_string_literal: true

require_relative "boot"

require "rails"
require "active_record/railtie"
require "active_job/railtie"
Bundler.require(*Rails.groups)

module CourierExample
  # A small Rails 7.2 / Sidekiq 7.3 app whose jobs exercise every path of the
  # Courier sidecar (plain Sidekiq jobs, ActiveJob through Rails 7.2's
  # adapter, sidekiq_options, retries, exhaustion, lifecycle events).
  class Application < Rails::Application
    config.load_defaults 7.2
    config.root = File.expand_path("..", __dir__)
    config.eager_load = ENV.fetch("EAGER_LOAD", "1") == "1"
    config.enable_reloading = !config.eager_load
    config.active_job.queue_adapter = :sidekiq
    config.logger = ActiveSupport::Logger.new(ENV["RAILS_LOG"] == "stdout" ? $stdout : File::NULL)
    config.log_level = :warn
    config.secret_key_base = "courier-example-not-secret"
  end
end
