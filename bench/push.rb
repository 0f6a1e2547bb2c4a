# frozen_string_literal: true

# Pre-pushes N no-op jobs with the real Sidekiq client, 1000 per push_bulk:
#   REDIS_URL=… ruby push.rb N
require_relative "noop_worker"

n = Integer(ARGV.fetch(0))
n.times.each_slice(1000) { |slice| Sidekiq::Client.push_bulk("class" => NoopJob, "args" => slice.map { |i| [i] }) }
queued = Sidekiq.redis { |r| r.llen("queue:default") }
abort "push.rb: queue:default holds #{queued} jobs, expected #{n}" unless queued == n
