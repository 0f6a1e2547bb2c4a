# frozen_string_literal: true

# For compare.sh: pushes BenchLatencyJob jobs one at a time with the real
# Sidekiq client (no Rails: the class is named by string), each stamped with
# Time.now.to_f just before its push, on a fixed schedule (job i at
# start + i / RATE, so a late push does not shift the later ones).
#
#   REDIS_URL=… ruby e2e_push.rb COUNT RATE LIST [LONG_SHARE=0] [WARMUP=0]
#
# LONG_SHARE: the share of jobs that sleep 200 ms (the rest sleep 2 ms when
# LONG_SHARE > 0, else 0 ms: the idle-pickup probe). WARMUP jobs go first,
# 20 ms apart, recording into bench:warm (not measured). Prints the achieved
# push rate.
require "sidekiq"
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
Sidekiq.configure_client { |c| c.redis = {url: ENV.fetch("REDIS_URL")} }

count, rate, list = Integer(ARGV[0]), Float(ARGV[1]), ARGV[2]
long_share = Float(ARGV.fetch(3, "0"))
warmup = Integer(ARGV.fetch(4, "0"))
rng = Random.new(7)
clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
push = ->(ms, into) { Sidekiq::Client.push("class" => "BenchLatencyJob", "queue" => "default", "args" => [Time.now.to_f, ms, into]) }

Sidekiq.redis(&:ping) # connected before the first timed push
warmup.times do
  push.call(0, "bench:warm")
  sleep 0.02
end
sleep 0.2 if warmup.positive?

start = clock.call
count.times do |i|
  wait = start + i / rate - clock.call
  sleep(wait) if wait.positive?
  ms = if long_share.positive? then rng.rand < long_share ? 200 : 2 else 0 end
  push.call(ms, list)
end
elapsed = clock.call - start
printf("pushed %d jobs in %.2f s (%.0f/s)\n", count, elapsed, count / [elapsed, 1e-9].max)
