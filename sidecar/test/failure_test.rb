# frozen_string_literal: true

require_relative "test_helper"

# 422 answers: the exception, and the job's own sidekiq_retry_in answer.
class FailureTest < CourierTest::Case
  def test_failing_job_answers_422_with_class_message_backtrace
    response = post_job(push(FailingJob, "it broke"))
    assert_equal 422, response.status
    assert_equal "application/json", response.headers["Content-Type"]
    assert_equal "failed", answer["status"]
    assert_equal "FailingJob::Boom", answer["error_class"]
    assert_equal "it broke", answer["error_message"]
    assert_match(%r{app/jobs/failing_job\.rb:\d+:in `perform'}, answer["backtrace"].first)
    assert_nil answer["retry_in"]
    assert_nil answer["retry_action"]
  end

  def test_retry_in_seconds_uses_the_next_retry_count
    payload = push(RetryInJob, "seconds")
    post_job(payload)
    assert_equal 422, last_response.status
    assert_equal 10, answer["retry_in"], "first failure: count 0"
    assert_nil answer["retry_action"]

    post_job(with_fields(payload, "retry_count" => 2, "error_class" => "RetryInJob::Failed"))
    assert_equal 40, answer["retry_in"], "payload retry_count 2 → count 3"
  end

  def test_retry_in_kill_and_discard
    post_job(push(RetryInJob, "kill"))
    assert_equal [nil, "kill"], [answer["retry_in"], answer["retry_action"]]
    post_job(push(RetryInJob, "discard"))
    assert_equal [nil, "discard"], [answer["retry_in"], answer["retry_action"]]
  end

  def test_retry_in_nil_or_broken_block_means_default_backoff
    %w[default broken].each do |mode|
      post_job(push(RetryInJob, mode))
      assert_equal 422, last_response.status
      assert_equal "RetryInJob::Failed", answer["error_class"]
      assert_equal [nil, nil], [answer["retry_in"], answer["retry_action"]], mode
    end
  end

  def test_active_job_failure_uses_hooks_of_the_wrapped_class
    post_job(push(ActiveRetryInJob))
    assert_equal 422, last_response.status
    assert_equal "ActiveRetryInJob::Failed", answer["error_class"]
    assert_equal 100, answer["retry_in"]
  end

  def test_job_that_calls_exit_is_a_failure_not_a_dead_sidecar
    klass = Class.new do
      include Sidekiq::Job
      def perform = exit(3)
    end
    Object.const_set(:ExitingJob, klass)
    post_job(push(ExitingJob))
    assert_equal 422, last_response.status
    assert_equal "SystemExit", answer["error_class"]
  ensure
    Object.send(:remove_const, :ExitingJob) if Object.const_defined?(:ExitingJob, false)
  end
end
