# frozen_string_literal: true

# Boots the example Rails app once, in Sidekiq server mode, exactly as the
# courier-sidecar executable does, against a real redis-server (REDIS_URL from
# test/run, or one started here) and a throwaway SQLite file.
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
$LOAD_PATH.unshift(File.expand_path("support", __dir__))

require "fileutils"
require "json"
require "tmpdir"
require "redis_server"

module CourierTest
  ROOT = File.expand_path("../..", __dir__)
  # The app the suite boots: the Rails 6.1 one by default, the Rails 7.2 one
  # in the Debian 13 matrix (COURIER_TEST_APP=examples/rails72_app).
  EXAMPLE_APP = File.expand_path(ENV.fetch("COURIER_TEST_APP", "examples/rails_app"), ROOT)
  SIDECAR = File.expand_path("..", __dir__)
  SECRET = "test-secret-#{Process.pid}"
  THREADS = 5
end

unless ENV["REDIS_URL"]
  redis = CourierTest::RedisServer.new.start
  ENV["REDIS_URL"] = redis.url
  at_exit { redis.stop }
end
unless ENV["DATABASE_PATH"]
  db_dir = Dir.mktmpdir("courier-db")
  ENV["DATABASE_PATH"] = File.join(db_dir, "test.sqlite3")
  at_exit { FileUtils.rm_rf(db_dir) }
end
ENV["RAILS_ENV"] ||= "test"
ENV["SIDEKIQ_LOG_LEVEL"] ||= "FATAL" # error handlers and ActiveJob log every failing job

require "courier/sidecar"
Courier::Sidecar::Boot.rails_app(CourierTest::EXAMPLE_APP, threads: CourierTest::THREADS)

require "minitest/autorun"
require "rack/test"
require "logger"

module CourierTest
  # Test base: Rack::Test against the real app, Redis and DB wiped per test.
  class Case < Minitest::Test
    include Rack::Test::Methods

    LOGGER = Logger.new(File::NULL)

    def self.options(**overrides)
      opts = Courier::Sidecar::Options.new({})
      opts.secret = SECRET
      overrides.each { |k, v| opts.public_send("#{k}=", v) }
      opts
    end

    def app
      @app ||= Courier::Sidecar::Boot.build_app(self.class.options, logger: LOGGER)
    end

    def setup
      Sidekiq.redis(&:flushdb)
      [JobRun, Event, Widget].each(&:delete_all)
    end

    def teardown
      ActiveRecord::Base.connection_handler.clear_active_connections!
    end

    # Pushes through the real Sidekiq client / ActiveJob adapter and returns
    # the job's JSON exactly as it sits in Redis.
    def push(klass, *args, **kwargs)
      jid = if klass < ActiveJob::Base
        klass.perform_later(*args, **kwargs).provider_job_id
      else
        klass.perform_async(*args)
      end
      queued_payload(jid)
    end

    def queued_payload(jid, queue: "default")
      found = Sidekiq.redis { |r| r.lrange("queue:#{queue}", 0, -1) }.find { |s| JSON.parse(s)["jid"] == jid }
      found or raise "job #{jid} not found in queue:#{queue}"
    end

    def sign(body, secret: SECRET, time: Time.now.to_i)
      Courier::Sidecar::Signature.sign(secret, body, time)
    end

    def post_job(body, path: "/v1/jobs", signature: sign(body), headers: {})
      env = {"CONTENT_TYPE" => "application/json"}
      env["HTTP_COURIER_SIGNATURE"] = signature if signature
      headers.each { |k, v| env["HTTP_#{k.upcase.tr("-", "_")}"] = v }
      post(path, body, env)
      last_response
    end

    def answer
      JSON.parse(last_response.body)
    end

    def middleware_count
      CourierExample::RecordingMiddleware.invocations
    end

    # Payload with fields changed as the dispatcher's retry bookkeeping would
    # (retry_count, error_*), starting from a real client payload.
    def with_fields(payload, fields)
      JSON.generate(JSON.parse(payload).merge(fields))
    end
  end
end
