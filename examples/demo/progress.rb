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

# On a terminal the line is rewritten in place; in a log, one line every 2 s.
tty = $stdout.tty?
drained = nil # [seconds, finished] when the queues first ran empty
last_print = -1.0
loop do
  done = finished.call
  stats = Sidekiq::Stats.new
  now = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
  drained ||= [now, done] if stats.enqueued.zero?
  complete = done >= expected && stats.enqueued.zero? && stats.scheduled_size.zero?
  if tty || complete || now - last_print >= 2
    line = format("  finished %6d / %d   enqueued %6d   scheduled %4d   retry %3d   dead %3d ",
                  done, expected, stats.enqueued, stats.scheduled_size, stats.retry_size, stats.dead_size)
    tty ? $stdout.write("\r#{line}") : puts(line)
    $stdout.flush
    last_print = now
  end
  break if complete
  abort "\ndemo: gave up: #{expected - done} jobs did not finish in time" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

  sleep 0.5
end
elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
puts if tty
seconds, count = drained
puts format("  queues drained after %.1f s: %d jobs, %.0f jobs/s through the Ruby sidecar", seconds, count, count / [seconds, 0.001].max)
puts format("  all %d finished after %.1f s (scheduled jobs wait 2–6 s by design)", expected, elapsed)
