# frozen_string_literal: true

require_relative "test_helper"

# Every kind of job runs through POST /v1/jobs with Sidekiq's execution
# context: middleware, jid, ActiveJob features, effects in the database.
class JobsTest < CourierTest::Case
  def test_plain_sidekiq_job_writes_its_row_with_jid_and_middleware
    payload = push(RecordJob, "hello")
    jid = JSON.parse(payload)["jid"]

    assert_equal 200, post_job(payload).status
    assert_equal({"status" => "ok"}, answer)
    run = JobRun.find_by!(jid: jid)
    assert_equal "RecordJob", run.job_class
    assert_equal "hello", run.arg
    assert_equal "default:#{jid}", run.middleware, "server middleware ran around perform, with the queue"
  end

  def test_courier_queue_header_is_the_queue_middleware_sees
    payload = push(RecordJob, "q")
    post_job(payload, headers: {"Courier-Queue" => "critical", "Courier-Jid" => "x", "Courier-Attempt" => "1"})
    assert_equal "critical:#{JSON.parse(payload)["jid"]}", JobRun.take!.middleware
  end

  def test_noop_jobs
    assert_equal 200, post_job(push(NoopJob, 1, "two")).status
    assert_equal 200, post_job(push(NoopActiveJob, 1, "two")).status
  end

  def test_active_job_with_global_id_argument
    widget = Widget.create!(name: "sprocket")
    payload = push(WidgetTouchJob, widget, note: "kw")
    assert_includes payload, "gid://courier-example/Widget/#{widget.id}", "the adapter serialised a GlobalID"
    jid = JSON.parse(payload)["jid"]

    assert_equal 200, post_job(payload).status
    assert_equal 1, widget.reload.touches
    run = JobRun.find_by!(jid: jid)
    assert_equal "WidgetTouchJob", run.job_class
    assert_equal "gid://courier-example/Widget/#{widget.id}|kw", run.arg
    assert_equal "default:#{jid}", run.middleware, "middleware wraps the ActiveJob wrapper too"
  end

  def test_active_job_callbacks_run
    payload = push(RetryingActiveJob, "fine")
    jid = JSON.parse(payload)["jid"]
    assert_equal 200, post_job(payload).status
    assert JobRun.exists?(jid: jid, arg: "fine")
    assert Event.exists?(kind: "after_perform", jid: jid)
  end

  def test_active_job_retry_on_reenqueues_through_sidekiq
    payload = push(RetryingActiveJob, "retry")
    Sidekiq.redis(&:flushdb)

    assert_equal 200, post_job(payload).status, "retry_on handled the error inside ActiveJob"
    scheduled = Sidekiq.redis { |r| r.zrange("schedule", 0, -1) }
    assert_equal 1, scheduled.size, "retry_on scheduled a new job in Redis"
    job = JSON.parse(scheduled.first)
    assert_equal "RetryingActiveJob", job["wrapped"]
    assert_equal 1, job["args"].first["executions"]
    refute Event.exists?(kind: "after_perform")
  end

  def test_active_job_discard_on_runs_its_block
    payload = push(RetryingActiveJob, "discard")
    jid = JSON.parse(payload)["jid"]
    assert_equal 200, post_job(payload).status
    assert Event.exists?(kind: "discarded", jid: jid, detail: "not worth it")
  end

  def test_slow_job_and_sidekiq_worker_alias
    payload = push(SlowJob, 0.05, "slept")
    assert_equal 200, post_job(payload).status
    assert JobRun.exists?(jid: JSON.parse(payload)["jid"], job_class: "SlowJob", arg: "slept")
  end

  def test_sidekiq_8_wrapper_name_runs_the_active_job
    payload = push(RetryingActiveJob, "renamed")
    renamed = with_fields(payload, "class" => "Sidekiq::ActiveJob::Wrapper")
    assert_equal 200, post_job(renamed).status
    assert JobRun.exists?(arg: "renamed")
  end

  def test_log_context_is_cleared_after_the_job
    post_job(push(NoopJob))
    assert_nil Thread.current[:sidekiq_context]
  end

  def test_health
    get "/v1/health"
    assert_equal 200, last_response.status
    assert_equal "ok", answer["status"]
    assert_equal 1, answer["protocol"]
    get "/health"
    assert_equal 200, last_response.status
  end
end
