# frozen_string_literal: true

# noop_worker.rb with Sidekiq's logger at WARN (no per-job start/done lines):
#   sidekiq -r ./quiet_worker.rb
require_relative "noop_worker"
Sidekiq.logger.level = Logger::WARN
