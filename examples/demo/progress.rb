# frozen_string_literal: true

# One progress line every half second until every enqueued job has finished
# (run, or failed into the retry/dead sets), then the throughput. Live
# counts come from the couriers' /metrics (courier_jobs_total, every outcome
# but "requeued"); queue, schedule and set sizes from Redis through the
# unchanged Sidekiq API.
require "net/http"
require "sidekiq"
require "sidekiq/api"
Redis.silence_deprecations = true if defined?(Redis) && Redis.respond_to?(:silence_deprecations=)
Sidekiq.configure_client { |c| c.redis = {url: ENV.fetch("REDIS_URL")} }

expected = Integer(File.read(ENV.fetch("DEMO_EXPECTED")))
ops = ENV.fetch("DEMO_OPS_URLS").split(",")
started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
deadline = started + Integer(ENV.fetch("DEMO_TIMEOUT", "180"))

finished = lambda do
  ops.sum do |url|
    Net::HTTP.get(URI("#{url}/metrics")).each_line.sum do |line|
      next 0 unless line.start_with?("courier_jobs_total{") && !line.include?('outcome="requeued"')

      line.split.last.to_i
    end
  rescue SystemCallError, IOError
    0
  end
end

loop do
  done = finished.call
  stats = Sidekiq::Stats.new
  $stdout.write(format("\r  finished %6d / %d   enqueued %6d   scheduled %4d   retry %3d   dead %3d ",
                       done, expected, stats.enqueued, stats.scheduled_size, stats.retry_size, stats.dead_size))
  $stdout.flush
  break if done >= expected && stats.enqueued.zero? && stats.scheduled_size.zero?
  abort "\ndemo: gave up: #{expected - done} jobs did not finish in time" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

  sleep 0.5
end
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
puts
puts format("  %d jobs finished in %.1f s: %.0f jobs/s (the scheduled ones wait 2–6 s by design)", expected, elapsed, expected / elapsed)
