# frozen_string_literal: true

# Courier executor sidecar: a plain Rack app that runs Sidekiq jobs of a Rails
# app posted by the Courier dispatcher (protocol v1, docs/protocol.md).
module Courier
  module Sidecar
  end
end

require_relative "sidecar/version"
require_relative "sidecar/errors"
require_relative "sidecar/cancel"
require_relative "sidecar/sidekiq_adapter"
require_relative "sidecar/running_jobs"
require_relative "sidecar/sibling_channel"
require_relative "sidecar/lifecycle"
require_relative "sidecar/signature"
require_relative "sidecar/job_resolver"
require_relative "sidecar/job_context"
require_relative "sidecar/trace"
require_relative "sidecar/delivery"
require_relative "unique_jobs"
require_relative "sidecar/job_runner"
require_relative "sidecar/failure"
require_relative "sidecar/remote_error"
require_relative "sidecar/exhausted_runner"
require_relative "sidecar/response"
require_relative "sidecar/body_reader"
require_relative "sidecar/app"
require_relative "sidecar/envelope"
require_relative "sidecar/batch"
require_relative "sidecar/job_pool"
require_relative "sidecar/spill_timer"
require_relative "sidecar/job_times"
require_relative "sidecar/stream"
require_relative "sidecar/options"
require_relative "sidecar/boot"
