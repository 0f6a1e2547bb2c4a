# frozen_string_literal: true

# For bench/sidecar/compare.sh: the same job code runs under Sidekiq and
# under courier + the sidecar, so its own clock reading is a fair
# enqueue→start figure on both sides.
#
#   perform(pushed_at, sleep_ms = 0, list = "bench:lat")
#
# pushed_at: the pusher's Time.now.to_f just before it pushed (the same wall
# clock: one machine). The delay is taken first thing in perform; then the
# job sleeps sleep_ms (a sleep-bound job of that length), then RPUSHes the
# delay in seconds onto `list` — at its end, so LLEN list is also the number
# of such jobs finished. Each process also notes once whether YJIT is on
# (HSET bench:yjit PID on|off), so the script can check RUBYOPT took effect.
class BenchLatencyJob
  include Sidekiq::Job

  def perform(pushed_at, sleep_ms = 0, list = "bench:lat")
    delay = Time.now.to_f - pushed_at.to_f
    sleep(sleep_ms / 1000.0) if sleep_ms.positive?
    Sidekiq.redis do |c|
      c.rpush(list, delay.round(6).to_s)
      unless BenchLatencyJob.noted
        BenchLatencyJob.noted = true
        c.hset("bench:yjit", Process.pid.to_s, defined?(RubyVM::YJIT) && RubyVM::YJIT.enabled? ? "on" : "off")
      end
    end
  end

  class << self
    attr_accessor :noted
  end
end
