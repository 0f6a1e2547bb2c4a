# frozen_string_literal: true

# Writes real payloads (pushed with the Sidekiq client / ActiveJob adapter,
# read back with LRANGE) and their signatures for the wrk runs:
#   ruby payloads.rb OUT_DIR SECRET [BATCH_SIZE]
require File.expand_path("../../examples/rails_app/config/environment", __dir__)
require "openssl"

out, secret, batch = ARGV[0], ARGV[1], Integer(ARGV[2] || 50)
Sidekiq.redis(&:flushdb)
NoopJob.perform_async(1, "two")
NoopActiveJob.perform_later(1, "two")
bodies = Sidekiq.redis { |r| r.lrange("queue:default", 0, -1) }
sign = ->(body) { t = Time.now.to_i; "t=#{t},v1=#{OpenSSL::HMAC.hexdigest("SHA256", secret, "#{t}.#{body}")}" }
{"noop" => NoopJob, "noop_aj" => ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper}.each do |name, klass|
  body = bodies.find { |b| JSON.parse(b)["class"] == klass.name }
  File.write(File.join(out, "#{name}.json"), body)
  File.write(File.join(out, "#{name}.sig"), sign.(body))
  batch_body = JSON.generate("jobs" => Array.new(batch) { {"payload" => body, "queue" => "default"} })
  File.write(File.join(out, "#{name}_batch.json"), batch_body)
  File.write(File.join(out, "#{name}_batch.sig"), sign.(batch_body))
end
Sidekiq.redis(&:flushdb)
