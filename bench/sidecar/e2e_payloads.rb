# frozen_string_literal: true

# For compare.sh: writes the pre-pushed backlogs once, as Redis protocol
# files for `redis-cli --pipe` (a run then loads N jobs in milliseconds, with
# no Ruby on the clock). Every payload is made by the real client: the jobs
# are pushed with Sidekiq::Client.push_bulk into the scratch Redis at
# REDIS_URL, read back, and written as RPUSH commands in the same list order.
#
#   cd examples/rails_app && REDIS_URL=… RAILS_ENV=production ruby e2e_payloads.rb OUTDIR N MIXED_N
#
#   OUTDIR/noop.resp     N NoopJob (Sidekiq::Job), args [i]
#   OUTDIR/aj.resp       N NoopActiveJob, as the ActiveJob adapter pushes them
#                        (JobWrapper, "wrapped", args [job.serialize])
#   OUTDIR/mixed.resp    MIXED_N BenchLatencyJob: 90 % sleep 2 ms, 10 % 200 ms,
#                        shuffled with a fixed seed; they record into bench:mixed
require "./config/environment"

out, n, mixed_n = ARGV[0], Integer(ARGV[1]), Integer(ARGV[2])

def resp(*args)
  "*#{args.size}\r\n" + args.map { |a| a = a.to_s; "$#{a.bytesize}\r\n#{a}\r\n" }.join
end

def dump(path)
  Sidekiq.redis(&:flushdb)
  yield
  jobs = Sidekiq.redis { |r| r.lrange("queue:default", 0, -1) }
  File.open(path, "wb") do |f|
    f.write(resp("SADD", "queues", "default"))
    jobs.each_slice(1000) { |s| f.write(resp("RPUSH", "queue:default", *s)) }
  end
  jobs.size
end

wrapper = ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper
counts = {
  noop: dump("#{out}/noop.resp") do
    n.times.each_slice(1000) { |s| Sidekiq::Client.push_bulk("class" => NoopJob, "args" => s.map { |i| [i] }) }
  end,
  aj: dump("#{out}/aj.resp") do
    n.times.each_slice(1000) do |s|
      Sidekiq::Client.push_bulk("class" => wrapper, "wrapped" => "NoopActiveJob", "queue" => "default",
                                "args" => s.map { |i| [NoopActiveJob.new(i).serialize] })
    end
  end,
  mixed: dump("#{out}/mixed.resp") do
    rng = Random.new(11)
    long = (mixed_n / 10.0).round
    kinds = (Array.new(long, 200) + Array.new(mixed_n - long, 2)).shuffle(random: rng)
    kinds.each_slice(1000) { |s| Sidekiq::Client.push_bulk("class" => BenchLatencyJob, "args" => s.map { |ms| [0, ms, "bench:mixed"] }) }
  end
}
Sidekiq.redis(&:flushdb)
bad = counts.select { |k, v| v != (k == :mixed ? mixed_n : n) }
abort "e2e_payloads.rb: wrong job counts #{bad}" unless bad.empty?
