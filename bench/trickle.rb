# frozen_string_literal: true

# Pushes N LatencyJob jobs one at a time (perform_async) with GAP seconds
# between them, from one process, onto an idle queue:
#   REDIS_URL=… ruby trickle.rb [N=200] [GAP=0.02]
require_relative "noop_worker"

n = Integer(ARGV.fetch(0, "200"))
gap = Float(ARGV.fetch(1, "0.02"))
Sidekiq.redis { |r| r.ping } # connect before the first timed push
n.times do |i|
  LatencyJob.perform_async(i)
  sleep gap
end
