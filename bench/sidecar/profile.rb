# frozen_string_literal: true

# In-process breakdown of the per-request path (no HTTP): µs per call of each
# stage, so the cost of every layer is visible.
#   REDIS_URL=... DATABASE_PATH=... RAILS_ENV=production ruby profile.rb [N]
$LOAD_PATH.unshift(File.expand_path("../../sidecar/lib", __dir__))
require "courier/sidecar"
require "rack/mock"
require "stringio"

n = Integer(ARGV[0] || 20_000)
Courier::Sidecar::Boot.rails_app(File.expand_path("../../examples/rails_app", __dir__), threads: 1)
opts = Courier::Sidecar::Options.new({})
opts.secret = "bench"
app = Courier::Sidecar::Boot.build_app(opts, logger: Logger.new(File::NULL))
Sidekiq.redis(&:flushdb)
NoopJob.perform_async(1, "two")
NoopActiveJob.perform_later(1, "two")
bodies = Sidekiq.redis { |r| r.lrange("queue:default", 0, -1) }
noop = bodies.find { |b| b.include?('"NoopJob"') }
noop_aj = bodies.find { |b| b.include?("JobWrapper") }

def measure(label, n)
  GC.start
  t0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
  n.times { yield }
  us = (Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID) - t0) / n * 1e6
  printf("%-44s %7.1f us\n", label, us)
end

sig = Courier::Sidecar::Signature.sign("bench", noop)
verifier = Courier::Sidecar::Signature.new("bench")
reloader = Courier::Sidecar::Boot.reloader(Courier::Sidecar::SidekiqAdapter.current)
resolver = Courier::Sidecar::JobResolver.new
job = JSON.parse(noop)
env_for = ->(body, s) { Rack::MockRequest.env_for("/v1/jobs", method: "POST", input: body, "HTTP_COURIER_SIGNATURE" => s) }

measure("Rack env (MockRequest.env_for)", n) { env_for.(noop, sig) }
measure("HMAC verify", n) { verifier.verify!(sig, noop) }
measure("JSON.parse", n) { JSON.parse(noop) }
measure("resolve (cached)", n) { resolver.resolve("NoopJob") }
measure("reloader.call {}", n) { reloader.call {} }
measure("Rails executor.wrap {}", n) { Rails.application.executor.wrap {} }
measure("middleware chain invoke", n) { Sidekiq.server_middleware.invoke(NoopJob.new, job, "default") {} }
measure("NoopJob.new + jid= + perform", n) { w = NoopJob.new; w.jid = "x"; w.perform(1, "two") }
measure("app.call noop (incl. env build)", n) { app.call(env_for.(noop, sig)) }
sig_aj = Courier::Sidecar::Signature.sign("bench", noop_aj)
measure("app.call noop ActiveJob (incl. env build)", n) { app.call(env_for.(noop_aj, sig_aj)) }
aj = JSON.parse(noop_aj)
measure("ActiveJob::Base.execute (no wrap)", n) { ActiveJob::Base.execute(aj["args"][0].merge("provider_job_id" => "x")) }
