# frozen_string_literal: true

require_relative "test_helper"

# Payloads found by tests/faults (scenario 4) that must not break the
# sidecar: every answer is one of the protocol's (400/413/422), never a 500,
# which the dispatcher takes for "executor unavailable" and requeues, so one
# such job would come back forever (and, in a batch, take the other jobs of
# the batch with it).
class HostilePayloadTest < CourierTest::Case
  # "class" that is not valid UTF-8: Regexp#match? raised ArgumentError
  # (invalid byte sequence), answered 500. Sidekiq's const_get raises
  # EncodingError there, which its retry layer retries: a failed attempt.
  def invalid_utf8_class
    +"{\"class\":\"Count\xFFJob\",\"args\":[],\"jid\":\"0123456789abcdef01234567\"}".b
  end

  def test_class_that_is_not_utf8_is_a_failed_attempt
    before = middleware_count
    post_job(invalid_utf8_class)
    assert_equal 422, last_response.status, last_response.body
    assert_equal "NameError", answer["error_class"]
    assert_match(/\Awrong constant name Count.Job\z/, answer["error_message"])
    assert answer["error_message"].valid_encoding?
    assert_equal before, middleware_count, "nothing ran"
  end

  def test_class_that_is_not_utf8_inside_a_batch
    good = push(CountJob)
    body = +"{\"jobs\":[{\"payload\":#{JSON.generate(good)}},{\"payload\":\"{\\\"class\\\":\\\"Count\xFFJob\\\",\\\"args\\\":[]}\"}]}"
    post_job(body.b, path: "/v1/jobs/batch")
    assert_equal 200, last_response.status, last_response.body
    assert_equal [200, 422], answer["results"].map { _1["code"] }
    assert_equal "NameError", answer["results"][1]["error_class"]
  end

  def test_exhausted_with_a_class_that_is_not_utf8_runs_the_death_handlers
    body = invalid_utf8_class.sub("\"args\"", "\"error_class\":\"NameError\",\"error_message\":\"x\",\"retry_count\":0,\"args\"")
    post_job(body, path: "/v1/jobs/exhausted")
    assert_equal 200, last_response.status, last_response.body
    assert Event.exists?(kind: "death", jid: "0123456789abcdef01234567")
  end
end
