# frozen_string_literal: true

module Courier
  # Raised inside a running job's thread when Courier gives up on it
  # (protocol: POST /v1/jobs/cancel). Not a StandardError, so the usual
  # `rescue => e` in app code does not swallow it; `ensure` blocks still run.
  # A shutdown raises Sidekiq::Shutdown instead, exactly as Sidekiq's processor
  # does at its hard-stop deadline.
  class Interruption < Exception # rubocop:disable Lint/InheritException -- must escape `rescue => e`
  end

  # The dispatcher's job timeout passed: the attempt is already counted failed.
  class JobTimeout < Interruption; end

  # Somebody cancelled this job by jid (`courier cancel JID`, Courier.cancel).
  class JobCancelled < Interruption; end

  # The payload's class is a constant, but not a job class (Kernel, a model):
  # never run, a failed attempt under the job's retry policy.
  class NotAJobClass < StandardError; end
end
