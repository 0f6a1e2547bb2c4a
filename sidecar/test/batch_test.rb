# frozen_string_literal: true

require_relative "test_helper"

# POST /v1/jobs/batch: many jobs, one signed request, one outcome each.
class BatchTest < CourierTest::Case
  def batch(entries)
    body = JSON.generate("jobs" => entries)
    post_job(body, path: "/v1/jobs/batch")
  end

  def test_each_job_gets_its_own_outcome
    ok = push(RecordJob, "batched")
    failing = push(RetryInJob, "seconds")
    entries = [
      {"payload" => ok, "queue" => "default"},
      {"payload" => failing, "queue" => "default"},
      {"payload" => JSON.generate("class" => "Kernel", "args" => [])},
      {"payload" => "{oops"},
      {"nope" => 1}
    ]
    assert_equal 200, batch(entries).status
    results = answer["results"]
    assert_equal "ok", answer["status"]
    assert_equal [200, 422, 422, 400, 400], results.map { |r| r["code"] }
    assert_equal "RetryInJob::Failed", results[1]["error_class"]
    assert_equal 10, results[1]["retry_in"]
    assert_equal "Courier::NotAJobClass", results[2]["error_class"]
    assert JobRun.exists?(jid: JSON.parse(ok)["jid"], middleware: "default:#{JSON.parse(ok)["jid"]}")
  end

  def test_envelope_refusals
    assert_equal 400, batch("nope").status
    post_job("[]", path: "/v1/jobs/batch")
    assert_equal 400, last_response.status
    too_many = Array.new(101) { {"payload" => "{}"} }
    assert_equal 413, batch(too_many).status
    post_job(JSON.generate("jobs" => []), path: "/v1/jobs/batch", signature: nil)
    assert_equal 401, last_response.status
  end

  # Entries that are not objects are each refused; the answer stays a batch
  # answer (they once came back as a malformed Rack triple).
  def test_entries_that_are_not_objects
    batch([1, "x", [200, {}, []]])
    assert_equal 200, last_response.status
    assert_equal [400, 400, 400], answer["results"].map { |r| r["code"] }
  end

  def test_oversized_job_inside_a_batch
    big = push(RecordJob, "x" * 1_100_000)
    batch([{"payload" => big}])
    assert_equal 413, answer["results"].first["code"]
    assert_equal 0, JobRun.count
  end
end
