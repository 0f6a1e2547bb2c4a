# frozen_string_literal: true

# A unique job (Courier::UniqueJobs, docs/unique-jobs.md). Records, as its
# row's arg, who held its lock while it ran: "mine", "free" or "other".
# mode "fail" raises after recording; "again" pushes a copy of itself first
# (the lock handover) and records the copy's jid too; "slow" runs a second
# first (the lock is held meanwhile).
class UniqueJob
  include Sidekiq::Job
  sidekiq_options unique_for: 60

  class Boom < StandardError; end

  def perform(*args)
    note, mode = args
    sleep 1 if mode == "slow"
    key = Courier::UniqueJobs.key_for({"class" => self.class.name, "queue" => "default", "args" => args})
    holder = Sidekiq.redis { |r| r.call("GET", key) }
    seen = if holder == jid then "mine" elsif holder then "other" else "free" end
    copy = mode == "again" ? " copy=#{self.class.perform_async(*args).inspect}" : ""
    JobRun.create!(jid: jid, job_class: self.class.name, arg: "#{note} lock=#{seen}#{copy}")
    raise Boom, "unique job failed on purpose" if mode == "fail"
  end
end
