# frozen_string_literal: true

# The end-to-end tier's Ruby side: boots the example app (so jobs are
# enqueued by the app's own Sidekiq client and ActiveJob adapter), then does
# one step against what courier + the sidecar did, with Sidekiq's own API
# (and Web UI, rack-mocked) as the oracle. Run by tests/e2e/run:
#
#   ruby check.rb STEP [ARGS]   → prints "ok STEP ..." or exits 1 with the reason
#
# State between steps (jids) lives in E2E_STATE (a JSON file).
require "json"

app = ENV.fetch("E2E_APP")
require File.join(app, "config", "environment")
require "sidekiq/api"
require "sidekiq/web"
require "sidekiq/metrics/query" if Sidekiq::VERSION.to_i >= 7

STATE_FILE = ENV.fetch("E2E_STATE")
SIDEKIQ7 = Sidekiq::VERSION.to_i >= 7

def state = File.exist?(STATE_FILE) ? JSON.parse(File.read(STATE_FILE)) : {}
def save(h) = File.write(STATE_FILE, JSON.generate(state.merge(h)))

def fail!(why)
  warn "e2e FAILED: #{why}"
  exit 1
end

def check(cond, why) = cond || fail!(why)

# Polls until the block is truthy (bounded); returns its value.
def eventually(what, seconds = 45)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  loop do
    value = yield
    return value if value
    fail!("gave up after #{seconds}s waiting for #{what}") if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

    sleep 0.2
  end
end

# Sidekiq 7 yields Sidekiq::Work (attribute readers), 6.4 a Hash.
def work_field(work, name) = work.respond_to?(name) ? work.public_send(name) : work[name.to_s]
def busy_with?(jid) = Sidekiq::Workers.new.find { |_process, _thread, work| work_field(work, :payload).to_s.include?(jid) }

def retry_entry(jid) = Sidekiq::RetrySet.new.find_job(jid)
def dead_entry(jid) = Sidekiq::DeadSet.new.find_job(jid)

# The Web UI as the example app's web process mounts it (behind its session
# middleware, at /sidekiq): lib/courier_example/web.rb, shared by both apps.
require File.join(app, "lib", "courier_example", "web")
require "rack/mock"
def web_get(path) = Rack::MockRequest.new(CourierExample::Web.app).get("/sidekiq#{path}")

def web_pages_answer
  pages = %w[/ /busy /queues /retries /morgue /scheduled]
  pages << "/metrics" if SIDEKIQ7
  pages.map { |p| [p, web_get(p).status] }.to_h
end

step = ARGV.fetch(0)
case step
when "enqueue"
  widget = Widget.create!(name: "e2e")
  jids = {
    "record" => RecordJob.perform_async("e2e-record"),
    "noop" => NoopJob.perform_async,
    "slow" => SlowJob.perform_async(0.2, "e2e-slow"),
    "scheduled" => RecordJob.perform_in(2, "e2e-scheduled"),
    "widget" => WidgetTouchJob.perform_later(widget, note: "e2e").provider_job_id,
    "aj_ok" => RetryingActiveJob.perform_later("ok").provider_job_id,
    "aj_discard" => RetryingActiveJob.perform_later("discard").provider_job_id,
    "failing" => FailingJob.perform_async("e2e boom"),
    # Its one retry already used: this failure exhausts it.
    "exhausted" => Sidekiq::Client.push("class" => ExhaustedJob, "args" => [], "retry_count" => 0),
    "unknown" => Sidekiq::Client.push("class" => "DeployedLaterJob", "args" => [1]),
    "not_a_job" => Sidekiq::Client.push("class" => "Kernel", "args" => ["rm -rf /"])
  }
  if SIDEKIQ7
    jids["critical"] = CriticalJob.perform_async("e2e-critical")
    jids["report"] = ReportJob.perform_later("e2e-report").provider_job_id
  end
  Sidekiq.redis { |c| c.lpush("queue:default", "not json at all") }
  save("jids" => jids, "widget" => widget.id)
  puts "ok enqueue #{jids.size} jobs + 1 malformed"

when "verify"
  jids = state.fetch("jids")
  ran = %w[record slow scheduled widget aj_ok]
  ran += %w[critical report] if SIDEKIQ7
  eventually("every job kind to run (#{ran.join(", ")})") { JobRun.where(jid: ran.map { jids[_1] }).count == ran.size }
  check(Widget.find(state.fetch("widget")).touches == 1, "the GlobalID widget was touched once")
  check(Event.exists?(kind: "after_perform", jid: jids["aj_ok"]), "ActiveJob callbacks ran")
  check(Event.exists?(kind: "discarded", jid: jids["aj_discard"]), "ActiveJob discard_on ran")

  failing = eventually("FailingJob in the RetrySet") { retry_entry(jids["failing"]) }
  check(failing["error_class"] == "FailingJob::Boom" && failing["error_message"] == "e2e boom" && failing["retry_count"] == 0,
        "FailingJob's retry entry: #{failing.item.slice("error_class", "error_message", "retry_count")}")
  dead = eventually("ExhaustedJob in the DeadSet") { dead_entry(jids["exhausted"]) }
  check(dead["error_class"] == "ExhaustedJob::Failed", "ExhaustedJob died of its own error")
  eventually("the exhausted hook and the death handler") do
    Event.exists?(kind: "exhausted", jid: jids["exhausted"]) && Event.exists?(kind: "death", jid: jids["exhausted"])
  end
  unknown = eventually("the unknown class in the RetrySet") { retry_entry(jids["unknown"]) }
  check(unknown["error_class"] == "NameError" && unknown["error_message"] == "uninitialized constant DeployedLaterJob",
        "unknown class: #{unknown.item.slice("error_class", "error_message")}")
  not_a_job = eventually("Kernel in the RetrySet") { retry_entry(jids["not_a_job"]) }
  check(not_a_job["error_class"] == "Courier::NotAJobClass", "Kernel: #{not_a_job["error_class"]}")
  eventually("the malformed payload in the DeadSet") { Sidekiq::DeadSet.new.any? { _1.value == "not json at all" } }
  check(JobRun.where(jid: [jids["unknown"], jids["not_a_job"]]).none?, "nothing ran for unresolvable classes")

  stats = eventually("stats to reach Redis") { s = Sidekiq::Stats.new; s.processed >= 12 && s }
  procs = Sidekiq::ProcessSet.new.to_a
  check(procs.size >= 1 && procs.all? { _1["concurrency"].to_i > 0 }, "ProcessSet lists courier")
  if SIDEKIQ7
    top = eventually("Sidekiq 7 execution metrics") do
      q = Sidekiq::Metrics::Query.new.top_jobs(minutes: 10)
      q.job_results["RecordJob"].totals["p"] >= 2 && q
    end
    check(top.job_results["FailingJob"].totals["f"] >= 1, "the Metrics tab counts FailingJob's failure")
  end
  eventually("the app's :startup poller to enqueue ticks that run") { JobRun.where("arg LIKE 'tick-%'").exists? }
  pages = web_pages_answer
  check(pages.values.all?(200), "Web UI pages: #{pages}")
  puts "ok verify processed=#{stats.processed} failed=#{stats.failed} retry=#{Sidekiq::RetrySet.new.size} dead=#{Sidekiq::DeadSet.new.size} web=#{pages.keys.join(",")}"

when "long_start"
  jid = LongJob.perform_async(ARGV.fetch(1).to_f, "e2e-long")
  save("long" => jid)
  eventually("LongJob to start (it leaves its queue)") { Sidekiq::Queue.new("default").size.zero? && Sidekiq::ScheduledSet.new.size.zero? }
  # Busy jobs as Sidekiq's API and Web UI show them (courier's heartbeat: ≤ 5 s).
  busy = eventually("LongJob among the busy jobs", 8) { busy_with?(jid) }
  check(work_field(busy[2], :queue) == "default" && Sidekiq::Stats.new.workers_size >= 1, "busy entry: #{busy[2].inspect}")
  check(web_get("/busy").body.include?(jid), "the Web UI's Busy page lists the running jid")
  puts "ok long_start #{jid} (busy in #{busy[0]})"

when "long_interrupted"
  jid = state.fetch("long")
  eventually("LongJob's ensure to run") { Event.exists?(kind: "ensure", jid: jid) }
  check(JobRun.where(jid: jid).none?, "the interrupted run did not complete")
  check(Event.where(kind: "rescued", jid: jid).none?, "rescue => e did not see the interruption")
  back = Sidekiq::Queue.new("default").find_job(jid)
  check(back, "LongJob is back in its queue")
  puts "ok long_interrupted (back in queue:default, retry_count=#{back["retry_count"].inspect})"

when "long_completed"
  jid = state.fetch("long")
  eventually("LongJob to run to completion after the restart", 60) { JobRun.where(jid: jid).count == 1 }
  check(retry_entry(jid).nil? && dead_entry(jid).nil?, "LongJob in neither retry nor dead set")
  puts "ok long_completed (exactly one completed run)"

when "cancel_start"
  jids = {"cli" => LongJob.perform_async(60, "cancel-cli"), "ruby" => LongJob.perform_async(60, "cancel-ruby")}
  save("cancel" => jids)
  eventually("both LongJobs to start") { Sidekiq::Queue.new("default").find_job(jids["cli"]).nil? && Sidekiq::Queue.new("default").find_job(jids["ruby"]).nil? }
  sleep 0.5 # past the sidecar's registration of the run
  puts "ok cancel_start #{jids.values.join(" ")}"

when "cancel_ruby"
  Courier.cancel(state.fetch("cancel").fetch("ruby"))
  puts "ok cancel_ruby (Courier.cancel from the app)"

when "cancelled"
  state.fetch("cancel").each do |how, jid|
    eventually("the #{how}-cancelled LongJob to be interrupted") { Event.exists?(kind: "ensure", jid: jid) }
    check(JobRun.where(jid: jid).none?, "#{how}: the cancelled run did not complete")
    eventually("#{how}: the cancelled job to leave courier") { !busy_with?(jid) }
    check(retry_entry(jid).nil? && dead_entry(jid).nil? && Sidekiq::Queue.new("default").find_job(jid).nil?,
          "#{how}: a cancelled job is neither retried, dead nor queued")
  end
  puts "ok cancelled (courier cancel JID and Courier.cancel: interrupted, not retried, not dead)"

when "stream_start"
  # Fetched together (one push, courier -c 8), so the slow job shares a stream with quick ones.
  before = Sidekiq::Stats.new.processed
  # In the middle: an idle queue's watcher claims the first job alone; the fetch after it takes the rest.
  fast = Array.new(12) { |i| [0.05, "stream-fast-#{i}"] }
  jids = Sidekiq::Client.push_bulk("class" => SlowJob, "args" => fast[0, 3] + [[3.0, "stream-slow"]] + fast[3..])
  slow = jids[3]
  save("stream" => {"slow" => slow, "before" => before, "pushed_at" => Time.now.to_f})
  eventually("the 12 quick jobs acknowledged", 10) { Sidekiq::Stats.new.processed - before >= 12 }
  waited = Time.now.to_f - state["stream"]["pushed_at"]
  check(JobRun.where(arg: "stream-slow").none?, "the slow job still runs")
  check(waited < 2.5, "the quick jobs' outcomes came #{waited.round(2)} s after the push: they waited for the slow one (3 s)")
  puts "ok stream_start (12 quick jobs acknowledged #{waited.round(2)} s after the push while a 3 s job of the same fetch still ran)"

when "stream_done"
  eventually("the slow job to run", 15) { JobRun.where(arg: "stream-slow").count == 1 }
  eventually("all 13 acknowledged", 10) { Sidekiq::Stats.new.processed - state["stream"]["before"] >= 13 }
  check(JobRun.where("arg LIKE 'stream-fast-%'").count == 12, "each quick job ran once")
  puts "ok stream_done"

when "burst"
  n = Integer(ARGV.fetch(1))
  Sidekiq::Client.push_bulk("class" => SlowJob, "args" => Array.new(n) { |i| [0.05, "burst-#{i}"] })
  puts "ok burst #{n}"

when "burst_done"
  n = Integer(ARGV.fetch(1))
  eventually("all #{n} burst jobs to run", 120) { JobRun.where("arg LIKE 'burst-%'").distinct.count(:arg) == n }
  dupes = Sidekiq::RetrySet.new.count { _1.klass == "SlowJob" }
  bad = Sidekiq::RetrySet.new.select { _1.klass == "SlowJob" && _1["error_class"] !~ /RecordNotUnique/ }
  check(bad.empty?, "burst jobs failed for another reason: #{bad.map { _1["error_class"] }.uniq}")
  check(Sidekiq::DeadSet.new.none? { _1.klass == "SlowJob" }, "no burst job died")
  puts "ok burst_done #{n} of #{n} ran; #{dupes} ran twice (in flight at the kill: at-least-once)"
when "unique_start"
  check(Sidekiq::ProcessSet.new.size >= 3, "three couriers are running (#{Sidekiq::ProcessSet.new.size} processes)")
  jids = Array.new(20) { |i| UniqueJob.perform_async("e2e-u#{i}", "slow") }
  check(jids.all?, "20 distinct unique jobs are accepted: #{jids.inspect}")
  dupes = Array.new(20) { |i| UniqueJob.perform_async("e2e-u#{i}", "slow") }
  check(dupes.none?, "their duplicates are refused while they wait or run: #{dupes.compact.size} accepted")
  save("unique" => jids)
  puts "ok unique_start (20 unique jobs accepted, their 20 duplicates refused at enqueue)"

when "unique_done"
  jids = state.fetch("unique")
  eventually("the 20 unique jobs to run", 60) { JobRun.where(jid: jids).count == 20 }
  runs = JobRun.where("arg LIKE 'e2e-u%'")
  check(runs.count == 20, "each unique job ran once, no duplicate ran: #{runs.count} runs")
  check(runs.all? { _1.arg.end_with?("lock=mine") }, "each held its own lock while it ran: #{runs.map(&:arg).uniq.first(3)}")
  eventually("every lock released after success", 10) do
    Array.new(20) { |i| Courier::UniqueJobs.key_for({"class" => "UniqueJob", "queue" => "default", "args" => ["e2e-u#{i}", "slow"]}) }
      .none? { |key| Sidekiq.redis { |r| r.call("GET", key) } }
  end
  again = Array.new(20) { |i| UniqueJob.perform_async("e2e-u#{i}", "slow") }
  check(again.all?, "allowed again after the release: #{again.count(nil)} refused")
  eventually("the second round to run", 60) { JobRun.where(jid: again).count == 20 }
  puts "ok unique_done (20 ran once each with #{Sidekiq::ProcessSet.new.size} couriers, locks released, the same jobs accepted and run again)"
else
  fail!("unknown step #{step}")
end
