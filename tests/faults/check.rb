# frozen_string_literal: true

# The fault suite's Ruby side (tests/faults/run): boots the example app, so
# jobs are pushed by the app's own Sidekiq client, and checks one step with
# Sidekiq's API and the app's Redis/DB as the oracle:
#
#   ruby check.rb STEP ARGS...   → prints "ok STEP key=value ..." or exits 1
#
# Jobs are CountJob (app/jobs/count_job.rb): HINCRBY faults:runs <jid> 1 per
# completed run, so a lost job counts 0 and a duplicated one > 1. State
# between steps lives in files under FAULTS_WORK.
require "json"
require "net/http"
require "openssl"

app = ENV.fetch("FAULTS_APP")
require File.join(app, "config", "environment")
require "sidekiq/api"

WORK = ENV.fetch("FAULTS_WORK")
RUNS = "faults:runs"

def fail!(why)
  warn "faults FAILED: #{why}"
  exit 1
end

def check(cond, why) = cond || fail!(why)
def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
def redis(&block) = Sidekiq.redis(&block)
def save(name, data) = File.binwrite(File.join(WORK, "#{name}.json"), JSON.generate(data))
def load(name) = JSON.parse(File.binread(File.join(WORK, "#{name}.json")))

# Polls until the block is truthy (bounded); `diag` explains a timeout.
def eventually(what, seconds, diag = nil)
  deadline = now + seconds
  loop do
    value = yield
    return value if value
    fail!("gave up after #{seconds}s waiting for #{what}#{diag && " (#{diag.call})"}") if now > deadline

    sleep 0.25
  end
end

# Runs recorded per jid (0 = never completed), in the order given.
def runs_of(jids)
  jids.each_slice(2000).flat_map { |slice| redis { |c| c.call("HMGET", RUNS, *slice) } }.map(&:to_i)
end

# Every courier in-progress list (courier:wip:<identity>:<queue>) and its length.
def wip_lists
  lists = {}
  cursor = "0"
  loop do
    cursor, keys = redis { |c| c.call("SCAN", cursor, "MATCH", "courier:wip:*", "COUNT", "1000") }
    keys.each { |k| lists[k] = redis { |c| c.call("LLEN", k) } if redis { |c| c.call("TYPE", k) } == "list" }
    break if cursor == "0"
  end
  lists
end

def wip_total = wip_lists.values.sum
def queued_total = Sidekiq::Queue.all.sum(&:size)
def stats = Sidekiq::Stats.new

# jid → its error class, for the entries of a set (Sidekiq's API) that are wanted.
def set_jids(set, wanted)
  found = {}
  set.each { |e| found[e.jid] = e["error_class"] if wanted.include?(e.jid) }
  found
end

def diag_counts(jids)
  runs = runs_of(jids)
  "ran #{runs.count(&:positive?)}/#{jids.size}, queued #{queued_total}, in progress #{wip_total}, " \
    "retry #{Sidekiq::RetrySet.new.size}, dead #{Sidekiq::DeadSet.new.size}, scheduled #{Sidekiq::ScheduledSet.new.size}"
end

step = ARGV.fetch(0)
case step
# enqueue NAME N SLEEP: N CountJobs through the app's client (push_bulk).
when "enqueue"
  name, n, seconds = ARGV[1], Integer(ARGV[2]), Float(ARGV[3])
  s = stats
  jids = (0...n).each_slice(1000).flat_map do |slice|
    Sidekiq::Client.push_bulk("class" => CountJob, "args" => Array.new(slice.size) { [seconds, name] })
  end
  check(jids.size == n && jids.uniq.size == n, "push_bulk returned #{jids.size} jids for #{n} jobs")
  save(name, {"jids" => jids, "processed" => s.processed, "failed" => s.failed, "t" => Time.now.to_f})
  puts "ok enqueue #{name}: #{n} CountJobs (sleep #{seconds}s each)"

# settle NAME BOUND [MAX_DUPLICATES]: every job ran, nothing queued or held
# in progress, none in the retry or dead set; counts lost and duplicated.
when "settle"
  name, bound = ARGV[1], Integer(ARGV[2])
  max_dups = ARGV[3] && Integer(ARGV[3])
  st = load(name)
  jids = st.fetch("jids")
  wanted = jids.to_set
  runs = nil
  retried = {} # jid → error class, for jobs seen in the retry set on the way
  eventually("#{name}: every job to run, queues and in-progress lists empty, retry set clear", bound, -> { diag_counts(jids) }) do
    runs = runs_of(jids)
    in_retry = set_jids(Sidekiq::RetrySet.new, wanted)
    retried.merge!(in_retry)
    runs.none?(&:zero?) && queued_total.zero? && wip_total.zero? && in_retry.empty?
  end
  dead = set_jids(Sidekiq::DeadSet.new, wanted)
  lost = runs.count(&:zero?)
  duplicated = runs.count { _1 > 1 }
  extra = runs.sum { [_1 - 1, 0].max }
  s = eventually("#{name}: stat:processed to reach the job count", 15) { x = stats; x.processed - st["processed"] >= jids.size && x }
  processed = s.processed - st["processed"]
  failed = s.failed - st["failed"]
  seconds = Time.now.to_f - st["t"]
  line = "#{name}: jobs=#{jids.size} lost=#{lost} duplicated=#{duplicated} extra_runs=#{extra} dead=#{dead.size} " \
         "processed+=#{processed} failed+=#{failed} in_progress_lists=0 settled_in=#{seconds.round(1)}s" \
         "#{retried.empty? ? "" : " retried_on_the_way=#{retried.size} #{retried.values.tally}"}"
  check(dead.empty?, "#{line}: jobs in the dead set")
  check(max_dups.nil? || duplicated <= max_dups, "#{line}: more duplicates than jobs that can be in flight (#{max_dups})")
  File.write(File.join(WORK, "#{name}.counts"), "#{line}\n")
  puts "ok settle #{line}#{max_dups ? " (bound #{max_dups})" : ""}"

else
  require_relative "hostile"
  require_relative "requests"
  fail!("unknown step #{step}") unless Faults.respond_to?(step)

  Faults.public_send(step, *ARGV.drop(1))
end
