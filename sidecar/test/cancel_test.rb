# frozen_string_literal: true

require_relative "test_helper"

# POST /v1/jobs/cancel interrupts the running job with that jid inside its
# own thread; its /v1/jobs request then answers 409 "interrupted".
class CancelTest < CourierTest::Case
  def built
    @built ||= Courier::Sidecar::Boot.build(self.class.options, logger: LOGGER)
  end

  def app
    built.app
  end

  def signed_env(path, body)
    Rack::MockRequest.env_for(path, method: "POST", input: body, "CONTENT_TYPE" => "application/json",
                                    "HTTP_COURIER_SIGNATURE" => sign(body))
  end

  # Waits up to 10 s for the block to be true.
  def wait_for
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
    sleep 0.01 until yield || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
  end

  # Starts a LongJob in its own thread (as a Puma thread would run it) and
  # waits until it is registered as running.
  def start_long_job(seconds = 30)
    payload = push(LongJob, seconds, "long")
    thread = Thread.new { app.call(signed_env("/v1/jobs", payload)) }
    wait_for { built.running.size == 1 }
    assert_equal 1, built.running.size, "the job is running"
    [JSON.parse(payload)["jid"], thread]
  end

  # A sidecar with one job slot, taken by a long job: [its jid, its thread].
  def fill_the_only_slot
    @built = Courier::Sidecar::Boot.build(self.class.options(job_threads: 1), logger: LOGGER)
    start_long_job
  end

  # Posts `payload` to /v1/jobs from its own thread and waits until it is
  # queued for the only slot; returns the thread.
  def start_waiting_job(payload)
    thread = Thread.new { app.call(signed_env("/v1/jobs", payload)) }
    wait_for { built.running.queued_size == 1 }
    assert_equal 1, built.running.queued_size, "the second job waits for the only slot, queued"
    thread
  end

  def cancel(jid, reason)
    post_job(JSON.generate("jid" => jid, "reason" => reason), path: "/v1/jobs/cancel")
  end

  {"cancel" => "Courier::JobCancelled", "timeout" => "Courier::JobTimeout", "shutdown" => "Sidekiq::Shutdown"}.each do |reason, error_class|
    define_method("test_#{reason}_interrupts_the_running_job") do
      jid, thread = start_long_job
      cancel(jid, reason)
      assert_equal 200, last_response.status
      assert_equal({"status" => "cancelled"}, answer)

      status, _headers, body = thread.join(10).value
      assert_equal 409, status
      doc = JSON.parse(body.join)
      assert_equal "interrupted", doc["status"]
      assert_equal reason, doc["reason"]
      assert_equal error_class, doc["error_class"]
      assert doc["backtrace"].any? { |line| line.include?("long_job.rb") }, "the backtrace shows where it was interrupted"
      refute JobRun.exists?(jid: jid), "the interrupted run did not complete"
      assert Event.exists?(kind: "ensure", jid: jid), "ensure blocks run"
      refute Event.exists?(kind: "rescued", jid: jid), "`rescue => e` does not swallow the interruption"
      assert_equal 0, built.running.size
    end
  end

  # With every slot busy a /v1/jobs job waits on its Puma thread for one
  # (a dispatcher may hold more jobs than the slots). Cancelled meanwhile, it
  # must never start: the dispatcher has already retried it or put it back.
  {"cancel" => "Courier::JobCancelled", "timeout" => "Courier::JobTimeout", "shutdown" => "Sidekiq::Shutdown"}.each do |reason, error_class|
    define_method("test_#{reason}_of_a_job_waiting_for_a_slot_answers_it_unstarted") do
      long_jid, long = fill_the_only_slot
      payload = push(LongJob, 0, "waiting")
      jid = JSON.parse(payload)["jid"]
      waiter = start_waiting_job(payload)

      cancel(jid, reason)
      assert_equal 200, last_response.status
      assert_equal({"status" => "cancelled"}, answer)
      status, _headers, body = waiter.join(10).value
      assert_equal 409, status
      doc = JSON.parse(body.join)
      assert_equal ["interrupted", reason, error_class, false, []],
                   doc.values_at("status", "reason", "error_class", "started", "backtrace")
      assert_includes doc["error_message"], "before it started"
      assert_equal 0, built.running.queued_size

      cancel(long_jid, "cancel")
      assert_equal 409, long.join(10).value.first
      refute JobRun.exists?(jid: jid), "the cancelled job never ran, even once the slot freed"
      cancel(jid, reason)
      assert_equal 404, last_response.status, "nothing left to cancel"
    end
  end

  def test_a_job_waiting_for_a_slot_runs_once_one_frees
    long_jid, long = fill_the_only_slot
    payload = push(LongJob, 0, "waiting")
    waiter = start_waiting_job(payload)
    cancel(long_jid, "cancel")
    assert_equal 409, long.join(10).value.first
    assert_equal 200, waiter.join(10).value.first
    assert JobRun.exists?(jid: JSON.parse(payload)["jid"])
    assert_equal [0, 0], [built.running.queued_size, built.running.size]
  end

  # Exhausted hooks are app code too: they run on a slot, so the pools sized
  # for the slots (RAILS_MAX_THREADS) never see one more thread.
  def test_exhausted_hooks_wait_for_a_slot
    long_jid, long = fill_the_only_slot
    payload = push(ExhaustedJob, 9)
    body = with_fields(payload, {"error_class" => "ExhaustedJob::Failed", "error_message" => "always fails",
                                 "retry_count" => 1, "failed_at" => Time.now.to_f - 60})
    hook = Thread.new { app.call(signed_env("/v1/jobs/exhausted", body)) }
    refute hook.join(0.3), "every slot busy: the hooks wait"
    refute Event.exists?(kind: "exhausted", jid: JSON.parse(payload)["jid"])
    cancel(long_jid, "cancel")
    assert_equal 409, long.join(10).value.first
    assert_equal 200, hook.join(10).value.first
    assert Event.exists?(kind: "exhausted", jid: JSON.parse(payload)["jid"]), "the hooks ran once the slot freed"
  end

  def test_a_job_that_is_not_running_is_not_found
    cancel("0123456789abcdef01234567", "cancel")
    assert_equal 404, last_response.status
    assert_equal "not_running", answer["status"]
  end

  def test_a_second_cancel_of_the_same_run_is_not_found
    jid, thread = start_long_job
    cancel(jid, "cancel")
    assert_equal 200, last_response.status
    thread.join(10)
    cancel(jid, "cancel")
    assert_equal 404, last_response.status
  end

  def test_bad_cancel_requests_are_refused
    ['{"jid":"x"}', '{"jid":"x","reason":"because"}', '{"jid":"","reason":"cancel"}', "[1]", "{nope"].each do |body|
      post_job(body, path: "/v1/jobs/cancel")
      assert_equal 400, last_response.status, body
    end
    post_job('{"jid":"x","reason":"cancel"}', path: "/v1/jobs/cancel", signature: nil)
    assert_equal 401, last_response.status
  end

  def test_health_advertises_cancel
    get "/v1/health"
    assert_includes answer["features"], "cancel"
    assert_equal Sidekiq::VERSION, answer["sidekiq"]
  end

  # A cancel racing with the end of a job must never land in whatever the
  # thread runs next, and must hit the run it names: each cancel targets a
  # run that has started, many of them as it ends.
  def test_an_interruption_never_outlives_its_job
    running = Courier::Sidecar::RunningJobs.new
    started = Queue.new
    hits = 0
    canceller = Thread.new do
      while (jid = started.pop) != :done
        hits += 1 if running.cancel(jid, :cancel)
      end
    end
    interrupted = foreign = stray = 0
    300.times do |i|
      jid = "job-#{i}"
      begin
        running.run(jid) do
          started << jid
          running.interruptible { (i % 7).times { Thread.pass } }
        end
      rescue Courier::JobCancelled => e
        e.message == "job #{jid} was cancelled" ? interrupted += 1 : foreign += 1
      end
      begin
        5.times { Thread.pass }
      rescue Courier::JobCancelled
        stray += 1
      end
    end
    started << :done
    canceller.join
    assert_operator hits, :>, 0, "some cancels found their run"
    assert_operator interrupted, :>, 0, "some runs were interrupted"
    assert_operator interrupted, :<=, hits
    assert_equal 0, foreign, "an interruption reached another run"
    assert_equal 0, stray, "an interruption outlived its run"
    assert_equal 0, running.size
  end
end
