# frozen_string_literal: true

require_relative "test_helper"
require "digest"
require "sidecar_process"

# Courier::UniqueJobs: the client middleware (installed by the example app's
# initializer with Courier::UniqueJobs.enable!) takes the lock at push, the
# sidecar releases it where the job runs (Rack::Test here, a real Puma below).
class UniqueJobsTest < CourierTest::Case
  include CourierTest::SidecarProcess

  UJ = Courier::UniqueJobs

  def redis(*command)
    Sidekiq.redis { |r| r.call(*command) }
  end

  def key_of(payload)
    JSON.parse(payload)["unique_key"]
  end

  def queued(queue = "default")
    Sidekiq.redis { |r| r.call("LRANGE", "queue:#{queue}", 0, -1) }
  end

  def test_duplicates_are_refused_at_enqueue
    jid = UniqueJob.perform_async("a")
    assert_match(/\A\h{24}\z/, jid)
    assert_nil UniqueJob.perform_async("a"), "perform_async returns nil for a duplicate, as under Enterprise"
    assert_nil UniqueJob.perform_async("a")
    refute_nil UniqueJob.perform_async("b"), "other args: another lock"
    refute_nil UniqueJob.set(queue: "other").perform_async("a"), "another queue: another lock"
    assert_equal 2, queued.size
    assert_equal 1, queued("other").size
    refute_nil UniqueJob.set(unique_for: false).perform_async("a"), "unique_for: false bypasses the lock"
    refute_nil RecordJob.perform_async("a")
    refute_nil RecordJob.perform_async("a"), "a job without unique_for is untouched"
  end

  def test_payload_and_lock_key
    payload = push(UniqueJob, "k")
    job = JSON.parse(payload)
    expected = "courier:unique:" + Digest::SHA256.hexdigest(JSON.generate(["UniqueJob", "default", ["k"]]))
    assert_equal expected, job["unique_key"]
    assert_equal 60, job["unique_for"]
    assert_equal "success", job["unique_until"]
    assert_equal job["jid"], redis("GET", expected)
    assert_includes 59_000..60_000, redis("PTTL", expected)
    # Equal Ruby hashes give one key whatever their key order.
    assert_equal UJ.key_for({"class" => "X", "queue" => "q", "args" => [{"a" => 1, "b" => {"c" => 2, "d" => 3}}]}),
                 UJ.key_for({"class" => "X", "queue" => "q", "args" => [{"b" => {"d" => 3, "c" => 2}, "a" => 1}]})
    assert_equal "start", JSON.parse(push_set(UniqueJob, {unique_until: :start}, "s"))["unique_until"]
  end

  def push_set(klass, options, *args)
    queued_payload(klass.set(options).perform_async(*args))
  end

  def test_bad_options_raise_at_push
    assert_raises(ArgumentError) { UniqueJob.set(unique_for: 0).perform_async("x") }
    assert_raises(ArgumentError) { UniqueJob.set(unique_for: "600").perform_async("x") }
    assert_raises(ArgumentError) { UniqueJob.set(unique_until: :finish).perform_async("x") }
    assert_empty queued
  end

  def test_released_when_the_job_succeeds
    payload = push(UniqueJob, "ok")
    key = key_of(payload)
    assert_equal 200, post_job(payload).status
    assert_equal "ok lock=mine", JobRun.find_by!(jid: JSON.parse(payload)["jid"]).arg, "held while it ran"
    assert_nil redis("GET", key)
    refute_nil UniqueJob.perform_async("ok"), "allowed again once the first succeeded"
  end

  def test_released_when_the_job_starts
    payload = push_set(UniqueJob, {unique_until: :start}, "st")
    assert_equal 200, post_job(payload).status
    assert_equal "st lock=free", JobRun.find_by!(jid: JSON.parse(payload)["jid"]).arg, "already free while it ran"
    # :start releases even when the job then fails (Enterprise's behaviour).
    failing = push_set(UniqueJob, {unique_until: :start}, "st", "fail")
    assert_equal 422, post_job(failing).status
    assert_nil redis("GET", key_of(failing))
    refute_nil UniqueJob.set(unique_until: :start).perform_async("st", "fail")
  end

  def test_a_failed_job_keeps_its_lock_until_a_retry_succeeds
    payload = push(UniqueJob, "f", "fail")
    job = JSON.parse(payload)
    assert_equal 422, post_job(payload).status
    assert_equal job["jid"], redis("GET", job["unique_key"]), "kept after a failure"
    assert_nil UniqueJob.perform_async("f", "fail"), "still refused while the job waits for its retry"
    # The retry is the same payload (same jid, same unique_key) with the
    # dispatcher's retry fields; here its args make it pass, as a fix would.
    retried = with_fields(payload, "retry_count" => 0, "error_class" => "UniqueJob::Boom",
                                   "failed_at" => Time.now.to_f, "args" => ["f", "ok"])
    JobRun.delete_all # the row is keyed by jid
    assert_equal 200, post_job(retried).status
    assert_nil redis("GET", job["unique_key"])
  end

  def test_the_lock_expires_by_its_ttl
    assert UniqueJob.set(unique_for: 0.3).perform_async("ttl")
    assert_nil UniqueJob.set(unique_for: 0.3).perform_async("ttl")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
    jid = nil
    until (jid = UniqueJob.set(unique_for: 0.3).perform_async("ttl"))
      flunk "the lock outlived its 0.3 s TTL" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.05
    end
    assert_equal 2, queued.size
  end

  def test_a_scheduled_job_counts_its_ttl_from_its_run_time
    jid = UniqueJob.perform_in(100, "later")
    job = JSON.parse(Sidekiq.redis { |r| r.call("ZRANGE", "schedule", 0, -1) }.first)
    assert_equal jid, job["jid"]
    refute job.key?("at")
    assert_includes 159_000..160_000, redis("PTTL", job["unique_key"])
    assert_nil UniqueJob.perform_async("later")
  end

  def test_never_deletes_another_jids_lock
    payload = push(UniqueJob, "cas")
    key = key_of(payload)
    # The lock expired and a newer job took it before this one succeeded.
    redis("SET", key, "newer-jid", "PX", 60_000)
    assert_equal 200, post_job(payload).status
    assert_equal "cas lock=other", JobRun.find_by!(jid: JSON.parse(payload)["jid"]).arg
    assert_equal "newer-jid", redis("GET", key), "the newer job's lock survives"
    Sidekiq.redis do |r|
      refute UJ.release(r, key, JSON.parse(payload)["jid"])
      assert UJ.release(r, key, "newer-jid")
      refute UJ.release(r, key, "newer-jid"), "already gone"
    end
  end

  def test_a_job_enqueuing_its_own_copy_hands_the_lock_over
    payload = push(UniqueJob, "h", "again")
    key = key_of(payload)
    assert_equal 200, post_job(payload).status
    arg = JobRun.find_by!(jid: JSON.parse(payload)["jid"]).arg
    copy = arg[/copy="(\h{24})"/, 1]
    assert copy, "the copy was pushed (#{arg})"
    assert_equal copy, redis("GET", key), "the copy holds the lock; the first job's success did not delete it"
    assert_nil UniqueJob.perform_async("h", "again"), "and outsiders are still refused"
  end

  # A later middleware that stops the push, or a push that raises, must not
  # leave a lock behind. (The middleware is called directly: Sidekiq 7.3's
  # Client#middleware { } shares its entries with the global chain.)
  def test_a_push_stopped_later_or_failing_leaves_no_lock
    mw = UJ::ClientMiddleware.new
    job = -> { {"class" => "UniqueJob", "queue" => "default", "args" => ["stopped"], "jid" => "a" * 24, "unique_for" => 60} }
    assert_nil(mw.call("UniqueJob", job.call, "default", Sidekiq.redis_pool) { nil })
    assert_raises(IOError) { mw.call("UniqueJob", job.call, "default", Sidekiq.redis_pool) { raise IOError, "Redis went away" } }
    assert_empty Sidekiq.redis { |r| r.call("KEYS", "courier:unique:*") }
    pushed = mw.call("UniqueJob", job.call, "default", Sidekiq.redis_pool) { :pushed }
    assert_equal :pushed, pushed
    assert_equal "a" * 24, redis("GET", UJ.key_for(job.call))
  end

  def test_active_job_classes
    first = UniqueActiveJob.perform_later("aj")
    UniqueActiveJob.perform_later("aj")
    assert_equal 1, queued.size, "the second perform_later was refused"
    payload = queued_payload(first.provider_job_id)
    job = JSON.parse(payload)
    assert_equal "UniqueActiveJob", job["wrapped"]
    expected = "courier:unique:" + Digest::SHA256.hexdigest(JSON.generate(["UniqueActiveJob", "default", ["aj"]]))
    assert_equal expected, job["unique_key"], "keyed by the wrapped class and its arguments, not the envelope"
    assert_equal 200, post_job(payload).status
    assert JobRun.exists?(jid: job["jid"])
    assert_nil redis("GET", expected)
    UniqueActiveJob.perform_later("aj")
    assert_equal 2, queued.size
  end

  def test_active_job_retry_on_keeps_the_lock_with_the_retry
    first = UniqueActiveJob.perform_later("flaky", "flaky")
    payload = queued_payload(first.provider_job_id)
    key = key_of(payload)
    assert_equal 200, post_job(payload).status, "retry_on rescued it: a success for Sidekiq"
    scheduled = Sidekiq.redis { |r| r.call("ZRANGE", "schedule", 0, -1) }.map { |s| JSON.parse(s) }
    assert_equal 1, scheduled.size, "retry_on re-enqueued it"
    assert_equal scheduled[0]["jid"], redis("GET", key), "the lock went to the retry"
    assert_operator redis("PTTL", key), :>, 80_000, "counted from the retry's run time (30 s + 60 s)"
    UniqueActiveJob.perform_later("flaky", "flaky")
    assert_equal 1, queued.size, "a fresh copy is still refused (only the first is queued)"
  end

  # The release happens in the sidecar process, under Puma, whichever
  # endpoint delivered the job.
  def test_through_the_real_sidecar
    pid, port, log = spawn_sidecar("--threads", "2")
    begin
      wait_healthy(port, pid, log)
      ok = push(UniqueJob, "puma")
      assert_equal "200", post_signed(port, "/v1/jobs", ok).code
      assert_nil redis("GET", key_of(ok)), "released by the sidecar on success"

      failing = push(UniqueJob, "puma", "fail")
      assert_equal "422", post_signed(port, "/v1/jobs", failing).code
      assert_equal JSON.parse(failing)["jid"], redis("GET", key_of(failing)), "a failure keeps it"

      started = push_set(UniqueJob, {unique_until: :start}, "puma-start")
      streamed = push(UniqueJob, "puma-stream")
      body = JSON.generate("jobs" => [{"payload" => started, "queue" => "default"}, {"payload" => streamed, "queue" => "default"}])
      res = post_signed(port, "/v1/jobs/stream", body)
      assert_equal "200", res.code
      codes = res.body.lines.reject { |l| l.strip.empty? }.map { |l| JSON.parse(l) }.reject { |l| l["done"] }.map { |l| l["code"] }
      assert_equal [200, 200], codes
      assert_nil redis("GET", key_of(started))
      assert_nil redis("GET", key_of(streamed))
      assert_equal "puma-start lock=free", JobRun.find_by!(jid: JSON.parse(started)["jid"]).arg
      assert_equal "puma-stream lock=mine", JobRun.find_by!(jid: JSON.parse(streamed)["jid"]).arg
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
  end
end
