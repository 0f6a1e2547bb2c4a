# frozen_string_literal: true

require_relative "test_helper"

# POST /v1/jobs/exhausted: sidekiq_retries_exhausted, then death handlers.
class ExhaustedTest < CourierTest::Case
  def exhausted(payload, error_class:, error_message:, **extra)
    body = with_fields(payload, {"error_class" => error_class, "error_message" => error_message,
                                 "retry_count" => 1, "failed_at" => Time.now.to_f - 60}.merge(extra))
    post_job(body, path: "/v1/jobs/exhausted")
  end

  def test_runs_the_exhausted_block_and_the_death_handler
    payload = push(ExhaustedJob, 7)
    jid = JSON.parse(payload)["jid"]

    assert_equal 200, exhausted(payload, error_class: "ExhaustedJob::Failed", error_message: "always fails").status
    assert_equal({"status" => "ok"}, answer)
    assert Event.exists?(kind: "exhausted", jid: jid, job_class: "ExhaustedJob", detail: "ExhaustedJob::Failed: always fails"),
      "the block got the job and an exception of the original class"
    assert Event.exists?(kind: "death", jid: jid, detail: "ExhaustedJob::Failed: always fails")
    assert_equal 0, JobRun.count, "perform did not run"
  end

  def test_death_only_skips_the_exhausted_block
    payload = push(ExhaustedJob, 8)
    body = with_fields(payload, {"error_class" => "ExhaustedJob::Failed", "error_message" => "retry false",
                                 "retry_count" => 0, "failed_at" => Time.now.to_f})
    assert_equal 200, post_job(body, path: "/v1/jobs/exhausted?only=death_handlers").status
    refute Event.exists?(kind: "exhausted"), "retry: false jobs never run sidekiq_retries_exhausted"
    assert Event.exists?(kind: "death", jid: JSON.parse(payload)["jid"])
  end

  def test_class_without_block_still_runs_death_handlers
    payload = push(FailingJob, "x")
    exhausted(payload, error_class: "FailingJob::Boom", error_message: "x")
    assert_equal 200, last_response.status
    refute Event.exists?(kind: "exhausted")
    assert Event.exists?(kind: "death", jid: JSON.parse(payload)["jid"])
  end

  def test_unknown_error_class_becomes_a_remote_error
    payload = push(ExhaustedJob)
    exhausted(payload, error_class: "Gone::Since::Deploy", error_message: "vanished")
    assert_equal 200, last_response.status
    assert Event.exists?(kind: "exhausted", detail: "Courier::Sidecar::RemoteError: vanished")
  end

  def test_backtrace_is_restored_from_error_backtrace
    seen = nil
    handler = ->(_job, error) { seen = error.backtrace }
    Courier::Sidecar::SidekiqAdapter.current.death_handlers << handler
    encoded = Base64.encode64(Zlib::Deflate.deflate(JSON.generate(["a.rb:1", "b.rb:2"])))
    exhausted(push(FailingJob, "x"), error_class: "FailingJob::Boom", error_message: "x", "error_backtrace" => encoded)
    assert_equal ["a.rb:1", "b.rb:2"], seen
  ensure
    Courier::Sidecar::SidekiqAdapter.current.death_handlers.delete(handler)
  end

  def test_active_job_exhausted_block_is_looked_up_on_the_wrapped_class
    payload = push(ActiveRetryInJob)
    exhausted(payload, error_class: "ActiveRetryInJob::Failed", error_message: "active job failed")
    assert_equal 200, last_response.status
    jid = JSON.parse(payload)["jid"]
    assert Event.exists?(kind: "exhausted", jid: jid, job_class: "ActiveRetryInJob")
    assert Event.exists?(kind: "death", jid: jid, job_class: "ActiveRetryInJob")
  end

  # Sidekiq runs the death handlers (no class block) for a job whose class
  # never resolved; the constant itself is never touched.
  def test_exhausted_with_an_unresolvable_class_runs_only_the_death_handlers
    %w[Kernel DeployedLaterJob].each do |klass|
      body = JSON.generate("class" => klass, "args" => [], "jid" => "j-#{klass}", "error_class" => "NameError",
                           "error_message" => "uninitialized constant #{klass}")
      post_job(body, path: "/v1/jobs/exhausted")
      assert_equal 200, last_response.status
      assert Event.exists?(kind: "death", jid: "j-#{klass}", job_class: klass, detail: "NameError: uninitialized constant #{klass}")
    end
    assert_equal 2, Event.count
  end
end
