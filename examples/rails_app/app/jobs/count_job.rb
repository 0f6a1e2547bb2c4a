# frozen_string_literal: true

# Counts its own runs by jid (tests/faults): HINCRBY faults:runs <jid> 1 once
# the optional sleep is over, so a job that never completed is 0 and one run
# twice is 2. Idempotent by construction: only the count changes.
class CountJob
  include Sidekiq::Job

  def perform(seconds = 0, _note = nil)
    sleep(seconds.to_f) if seconds.to_f.positive?
    Sidekiq.redis { |c| c.hincrby("faults:runs", jid, 1) }
  end
end
