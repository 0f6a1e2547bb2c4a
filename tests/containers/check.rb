# frozen_string_literal: true

# The container test's oracle, run INSIDE the app container with the app's
# own environment (Sidekiq's API and the app's database):
#
#   podman exec -i APP bundle exec ruby - MODE STATE.json... < tests/containers/check.rb
#
# STATE files are the answers of POST /enqueue (jids by kind).
#   done     exit 0 when every job has finished (no job waiting, scheduled or
#            held by a courier, every row written), else print what is left and exit 1
#   verify   one line per check ("ok ..." / "FAIL ..."); exit 1 if any failed
#   processes  print the number of live courier processes in Sidekiq's process set
require "json"
require File.join(Dir.pwd, "config", "environment") # the app container's WORKDIR
require "sidekiq/api"

mode = ARGV.shift
states = ARGV.map { |path| JSON.parse(File.read(path)) }
jids = Hash.new { |h, k| h[k] = [] }
states.each { |s| s.fetch("jids").each { |kind, list| jids[kind].concat(list) } }
with_rows = jids.values_at("record", "scheduled", "slow", "widget").flatten
total = jids.values.sum(&:size)

def redis_call(*args)
  Sidekiq.redis { |c| c.call(*args) }
end

# Jobs a courier holds (fetched, not yet acknowledged) are in its own lists.
def wip_size
  keys = []
  cursor = "0"
  loop do
    cursor, batch = redis_call("SCAN", cursor, "MATCH", "courier:wip:*", "COUNT", "1000")
    keys.concat(batch)
    break if cursor == "0"
  end
  # courier:wip (a set) and courier:wip:IDENTITY (sets) match too: only the lists hold jobs.
  keys.sum { |k| redis_call("TYPE", k) == "list" ? redis_call("LLEN", k).to_i : 0 }
end

def sorted_set_by_jid(set)
  set.each_with_object({}) { |entry, h| h[entry.jid] = entry }
end

case mode
when "processes"
  puts Sidekiq::ProcessSet.new.count { |p| p["labels"].to_a.include?("courier") }
when "done"
  rows = JobRun.where(jid: with_rows).count
  queued = Sidekiq::Queue.all.sum(&:size)
  scheduled = Sidekiq::ScheduledSet.new.size
  wip = wip_size
  dead = Sidekiq::DeadSet.new.size
  left = {"rows_missing" => with_rows.size - rows, "queued" => queued, "scheduled" => scheduled,
          "held" => wip, "dead_missing" => [jids["failing"].size - dead, 0].max}
  puts left.map { |k, v| "#{k}=#{v}" }.join(" ")
  exit(left.values.all?(&:zero?) ? 0 : 1)
when "verify"
  failed = 0
  check = lambda do |ok, what|
    puts "#{ok ? "ok" : "FAIL"} #{what}"
    failed += 1 unless ok
  end
  runs = JobRun.where(jid: with_rows).group(:jid).count
  %w[record scheduled slow widget].each do |kind|
    missing = jids[kind].reject { |j| runs[j] }
    check.call(missing.empty?, "#{kind}: #{jids[kind].size - missing.size}/#{jids[kind].size} jobs have their row" \
                               "#{missing.empty? ? "" : " (missing e.g. #{missing.first(3).join(",")})"}")
  end
  check.call(runs.values.all? { |n| n == 1 }, "no job wrote its row twice (unique jid index)")

  widget_ids = states.map { |s| s["widget_id"] }.compact
  touches = Widget.where(id: widget_ids).sum(:touches)
  check.call(touches >= jids["widget"].size, "WidgetTouchJob (ActiveJob, GlobalID): widgets touched #{touches} times for #{jids["widget"].size} jobs")

  dead = sorted_set_by_jid(Sidekiq::DeadSet.new)
  dead_ok = jids["failing"].count { |j| dead[j]&.item&.dig("error_class") == "FailingJob::Boom" }
  with_event = Event.where(kind: "death", jid: jids["failing"]).distinct.pluck(:jid)
  # A courier killed (kill -9) after it put a job in the dead set and before
  # it posted the job's death handlers loses that call: hooks run at most
  # once, as in Sidekiq. Such jobs are in the killed courier's log.
  victim_log = ENV["VICTIM_LOG"] && File.exist?(ENV["VICTIM_LOG"]) ? File.read(ENV["VICTIM_LOG"]) : ""
  no_event = jids["failing"] - with_event
  lost, unexplained = no_event.partition { |j| victim_log.match?(/\bdead\b.*\bjid=#{j}\b/) }
  check.call(dead_ok == jids["failing"].size && unexplained.empty?,
             "FailingJob (retry: 0): #{dead_ok}/#{jids["failing"].size} in the dead set as FailingJob::Boom, " \
             "#{with_event.size} death handler events#{lost.empty? ? "" : ", #{lost.size} lost with the killed courier"}" \
             "#{unexplained.empty? ? "" : ", no event for #{unexplained.first(3).join(",")}"}")
  stats = Sidekiq::Stats.new
  check.call(stats.processed >= total, "stat:processed #{stats.processed} >= #{total} jobs enqueued (noop jobs included)")
  check.call(Sidekiq::Queue.all.sum(&:size).zero?, "every queue is empty")
  ours = jids.values.flatten.to_h { |j| [j, true] }
  check.call(Sidekiq::ScheduledSet.new.none? { |e| ours[e.jid] }, "no perform_in job left in the schedule")
  check.call(wip_size.zero?, "no job held in a courier's in-progress list")

  # At-least-once: a job whose courier was killed after the sidecar ran it
  # is run again by another courier; its second run hits the unique jid
  # index and goes to the retry set. Anything else there is a failure.
  retries = Sidekiq::RetrySet.new.to_a
  dupes, other = retries.partition { |e| ours[e.jid] && e.item["error_class"].to_s.end_with?("RecordNotUnique") }
  check.call(other.empty?, "retry set: #{dupes.size} re-runs of jobs the killed courier held (RecordNotUnique, at-least-once), " \
                           "#{other.size} other#{other.empty? ? "" : " (#{other.first(3).map { |e| "#{e.klass}: #{e.item["error_class"]}" }.join("; ")})"}")
  puts "summary: #{total} jobs (#{jids.map { |k, v| "#{k} #{v.size}" }.join(", ")}), processed #{stats.processed}, failed #{stats.failed}, " \
       "dead #{stats.dead_size}, retry #{stats.retry_size}, re-runs #{dupes.size}"
  exit(failed.zero? ? 0 : 1)
else
  abort "usage: check.rb done|verify|processes STATE.json..."
end
