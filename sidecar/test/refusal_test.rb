# frozen_string_literal: true

require_relative "test_helper"

# Refused requests never run anything: no row, no event, no middleware call,
# and the answer says why.
class RefusalTest < CourierTest::Case
  def assert_nothing_ran(before_middleware)
    assert_equal 0, JobRun.count, "no job row"
    assert_equal 0, Event.count, "no hook ran"
    assert_equal before_middleware, middleware_count, "the server middleware chain was not entered"
  end

  def assert_refused(status, reason_pattern)
    assert_equal status, last_response.status, last_response.body
    assert_equal "refused", answer["status"]
    assert_match reason_pattern, answer["reason"]
  end

  def test_unsigned_request
    payload = push(RecordJob, "x")
    before = middleware_count
    post_job(payload, signature: nil)
    assert_refused 401, /missing Courier-Signature/
    assert_nothing_ran before
  end

  def test_wrong_secret
    payload = push(RecordJob, "x")
    before = middleware_count
    post_job(payload, signature: sign(payload, secret: "not-the-secret"))
    assert_refused 401, /does not match/
    assert_nothing_ran before
  end

  def test_signature_of_another_body
    payload = push(RecordJob, "x")
    post_job(payload, signature: sign(payload.sub("x", "y")))
    assert_refused 401, /does not match/
    assert_equal 0, JobRun.count
  end

  def test_stale_and_future_timestamps
    payload = push(RecordJob, "x")
    before = middleware_count
    post_job(payload, signature: sign(payload, time: Time.now.to_i - 301))
    assert_refused 401, /tolerance 300s/
    post_job(payload, signature: sign(payload, time: Time.now.to_i + 400))
    assert_refused 401, /tolerance 300s/
    assert_nothing_ran before
  end

  def test_garbage_signature_header
    payload = push(RecordJob, "x")
    post_job(payload, signature: "v1=abc")
    assert_refused 401, /no valid t=/
  end

  def test_signature_is_checked_before_the_class
    post_job(JSON.generate("class" => "Kernel", "args" => []), signature: nil)
    assert_refused 401, /missing/
  end

  # A class that does not resolve is a failed attempt (422), as in Sidekiq,
  # so the dispatcher retries it under the job's retry policy; nothing runs.
  def test_classes_that_do_not_resolve_fail_without_running
    before = middleware_count
    real = JSON.parse(push(RecordJob, "x"))
    {
      "Kernel" => ["Courier::NotAJobClass", /\AKernel is not a job class/],
      "File" => ["Courier::NotAJobClass", /\AFile is not a job class/],
      "Object" => ["Courier::NotAJobClass", /\AObject is not a job class/],
      "Widget" => ["Courier::NotAJobClass", /\AWidget is not a job class/],
      "Foo::Bar" => ["NameError", /\Auninitialized constant Foo\z/],
      "RecordJob::Nope" => ["NameError", /\Auninitialized constant RecordJob::Nope\z/],
      "system('touch /tmp/x')" => ["NameError", /\Awrong constant name system/],
      "recordjob" => ["NameError", /\Awrong constant name recordjob\z/]
    }.each do |klass, (error_class, message)|
      post_job(JSON.generate(real.merge("class" => klass, "args" => ["rm -rf /"])))
      assert_equal 422, last_response.status, klass
      assert_equal "failed", answer["status"]
      assert_equal error_class, answer["error_class"], klass
      assert_match message, answer["error_message"], klass
      assert_equal [], answer["backtrace"]
      assert_nil answer["retry_in"]
    end
    assert_nothing_ran before
  end

  def test_malformed_payloads
    before = middleware_count
    {
      "{not json" => /malformed JSON/,
      "[1,2]" => /must be a JSON object/,
      '{"args":[]}' => /no "class" string/,
      '{"class":42,"args":[]}' => /no "class" string/,
      '{"class":"RecordJob","args":"x"}' => /"args" must be an array/,
      '{"class":"RecordJob"}' => /"args" must be an array/
    }.each do |body, reason|
      post_job(body)
      assert_refused 400, reason
    end
    assert_nothing_ran before
  end

  def test_oversized_body_by_content_length
    payload = push(RecordJob, "x" * 2_000_000)
    before = middleware_count
    post_job(payload)
    assert_refused 413, /over the 1048576-byte limit/
    assert_nothing_ran before
  end

  def test_oversized_body_without_content_length
    body = JSON.generate("class" => "RecordJob", "args" => ["x" * 200])
    small = Courier::Sidecar::Boot.build_app(self.class.options(max_body: 100), logger: LOGGER)
    env = Rack::MockRequest.env_for("/v1/jobs", method: "POST", input: body,
                                                "HTTP_COURIER_SIGNATURE" => sign(body))
    env.delete("CONTENT_LENGTH")
    status, _headers, chunks = small.call(env)
    assert_equal 413, status
    assert_match(/over the 100-byte limit/, JSON.parse(chunks.join)["reason"])
    assert_equal 0, JobRun.count
  end

  def test_unknown_path_and_wrong_method
    post_job("{}", path: "/v2/jobs")
    assert_refused 404, %r{/v2/jobs}
    get "/v1/jobs"
    assert_refused 405, /GET not allowed/
    assert_equal "POST", last_response.headers["Allow"]
    post "/v1/health"
    assert_refused 405, /POST not allowed/
  end

  def test_dev_mode_needs_no_signature
    dev = Courier::Sidecar::Boot.build_app(self.class.options(dev: true, secret: nil), logger: LOGGER)
    payload = push(RecordJob, "dev")
    status, = dev.call(Rack::MockRequest.env_for("/v1/jobs", method: "POST", input: payload))
    assert_equal 200, status
    assert JobRun.exists?(arg: "dev")
  end
end
