# frozen_string_literal: true

require_relative "test_helper"

# The Rails executor wrap returns Active Record connections to the pool after
# every job, on every thread.
class PoolTest < CourierTest::Case
  JOBS = 1_000
  THREADS = 4

  def test_connection_pool_is_clean_after_1000_jobs
    payloads = Sidekiq::Client.push_bulk("class" => RecordJob, "args" => Array.new(JOBS) { |i| ["bulk-#{i}"] })
    assert_equal JOBS, payloads.size
    bodies = Sidekiq.redis { |r| r.lrange("queue:default", 0, -1) }
    assert_equal JOBS, bodies.size
    ActiveRecord::Base.connection_handler.clear_active_connections!

    queue = Queue.new
    bodies.each { |b| queue << b }
    statuses = Array.new(THREADS) do
      Thread.new do
        session = Rack::MockRequest.new(app)
        codes = []
        while (body = (queue.pop(true) rescue nil))
          res = session.post("/v1/jobs", input: body, "HTTP_COURIER_SIGNATURE" => sign(body))
          codes << res.status
          warn res.body if res.status != 200
        end
        codes
      end
    end.flat_map(&:value)

    assert_equal({200 => JOBS}, statuses.tally)
    stat = ActiveRecord::Base.connection_pool.stat
    assert_equal 0, stat[:busy], "no connection left checked out: #{stat}"
    assert_equal 0, stat[:dead], "no connection owned by a finished thread: #{stat}"
    assert_operator stat[:connections], :<=, THREADS, stat.inspect
    assert_equal JOBS, JobRun.count
  end
end
