# frozen_string_literal: true

# The benchmark's Sidekiq side, loaded by `sidekiq -r ./noop_worker.rb` and by
# the client scripts (push.rb, trickle.rb). Redis comes from REDIS_URL.
require "sidekiq"

# redis-rb 4.8 warns on every SADD that Sidekiq 6.4 sends (push, heartbeat).
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

Sidekiq.configure_server { |c| c.redis = {url: ENV.fetch("REDIS_URL")} }
Sidekiq.configure_client { |c| c.redis = {url: ENV.fetch("REDIS_URL")} }

# The throughput job: does nothing.
class NoopJob
  include Sidekiq::Worker
  def perform(*); end
end

# The pickup-latency job: records (now − enqueued_at) in seconds into the
# Redis list bench:latency when perform starts. A Sidekiq 6.4 worker does not
# see its job hash, so a server middleware (installed only when BENCH_LATENCY
# is set, to keep the throughput runs middleware-free) hands it over.
class LatencyJob
  include Sidekiq::Worker
  def perform(*)
    now = Time.now.to_f
    enqueued_at = Thread.current[:bench_job]&.fetch("enqueued_at", nil) or return
    Sidekiq.redis { |r| r.rpush("bench:latency", (now - enqueued_at).to_s) }
  end
end

class BenchJobMiddleware
  def call(_worker, job, _queue)
    Thread.current[:bench_job] = job
    yield
  ensure
    Thread.current[:bench_job] = nil
  end
end

if ENV["BENCH_LATENCY"]
  Sidekiq.configure_server { |c| c.server_middleware { |chain| chain.add BenchJobMiddleware } }
end
