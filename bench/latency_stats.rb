# frozen_string_literal: true

# Reads the bench:latency list written by LatencyJob and prints
# "p50_ms p99_ms max_ms count", with the same percentile rule as
# courier-test-executor (sorted[min(n − 1, floor(n × p))]):
#   REDIS_URL=… ruby latency_stats.rb
require_relative "noop_worker"

samples = Sidekiq.redis { |r| r.lrange("bench:latency", 0, -1) }.map(&:to_f).sort
abort "latency_stats.rb: no samples" if samples.empty?
pct = ->(p) { samples[[samples.size - 1, (samples.size * p).floor].min] * 1000 }
printf("%.3f %.3f %.3f %d\n", pct.(0.5), pct.(0.99), samples.last * 1000, samples.size)
