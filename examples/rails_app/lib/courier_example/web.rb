# frozen_string_literal: true

require "json"
require "securerandom"
require "sidekiq/web"
require "sidekiq/api"
# Sidekiq::Web needs a session. Rack 3 moved the cookie store to the
# rack-session gem; Rack 2 still has it.
if Gem::Version.new(Rack.release) >= Gem::Version.new("3")
  require "rack/session"
else
  require "rack/session/cookie"
end

module CourierExample
  # The example app's web process (config.ru): the Sidekiq Web UI at
  # /sidekiq, POST /enqueue to enqueue a mix of jobs through the app's own
  # Sidekiq client (what a web request of a real app does), GET /stats, and
  # GET /up for a healthcheck. No authentication: bind it to a private
  # address (the compose file publishes it on 127.0.0.1 only).
  module Web
    # One enqueue "round" of 20 jobs; POST /enqueue?n=N&mix=1 repeats it.
    MIX = (%i[record] * 8 + %i[noop] * 2 + %i[noop_active] + %i[widget] * 3 +
           %i[failing] + %i[scheduled] * 3 + %i[slow] * 2).freeze
    KINDS = %i[record noop noop_active widget failing scheduled slow].freeze
    MAX_N = 20_000

    module_function

    def app
      session_secret = ENV.fetch("WEB_SESSION_SECRET") { SecureRandom.hex(64) }
      Rack::Builder.new do
        map "/up" do
          run ->(_env) { [200, {"content-type" => "text/plain"}, ["ok\n"]] }
        end
        map "/enqueue" do
          run ->(env) { CourierExample::Web.enqueue(Rack::Request.new(env)) }
        end
        map "/stats" do
          run ->(_env) { CourierExample::Web.json(200, CourierExample::Web.stats) }
        end
        map "/sidekiq" do
          use Rack::Session::Cookie, secret: session_secret, same_site: true, max_age: 86_400
          run Sidekiq::Web
        end
        map "/" do
          run ->(_env) { [302, {"location" => "/sidekiq", "content-type" => "text/plain"}, ["/sidekiq\n"]] }
        end
      end.to_app
    end

    def json(status, object)
      [status, {"content-type" => "application/json"}, [JSON.generate(object) + "\n"]]
    end

    # POST /enqueue?n=N[&mix=1][&tag=T][&delay=S]: N jobs; with mix=1 the
    # realistic mix of MIX (plain Sidekiq jobs, ActiveJob with a GlobalID
    # argument, a job that fails straight into the dead set, perform_in,
    # a slow job), else N RecordJobs. Answers the jids by kind.
    def enqueue(req)
      return json(405, "error" => "POST only") unless req.post?

      n = Integer(req.params.fetch("n", "100"), exception: false)
      return json(400, "error" => "n must be 1..#{MAX_N}") unless n&.between?(1, MAX_N)

      mix = req.params["mix"] == "1"
      tag = req.params.fetch("tag") { SecureRandom.hex(4) }.gsub(/[^\w.-]/, "")[0, 40]
      delay = Float(req.params.fetch("delay", "2"), exception: false) || 2.0
      widget = Widget.find_or_create_by!(name: "web-#{tag}") if mix
      jids = KINDS.to_h { |k| [k, []] }
      n.times do |i|
        kind = mix ? MIX[i % MIX.size] : :record
        note = "#{tag}-#{i}"
        jids[kind] << push(kind, note, widget, delay)
      end
      json(200, "tag" => tag, "n" => n, "widget_id" => widget&.id, "jids" => jids)
    end

    def push(kind, note, widget, delay)
      case kind
      when :record then RecordJob.perform_async(note)
      when :noop then NoopJob.perform_async(note)
      when :noop_active then NoopActiveJob.perform_later(note).provider_job_id
      when :widget then WidgetTouchJob.perform_later(widget, note: note).provider_job_id
      # retry: 0 sends the failure straight to the dead set (and through the
      # app's death handler), where the Web UI shows it.
      when :failing then FailingJob.set(retry: 0).perform_async("boom #{note}")
      when :scheduled then RecordJob.perform_in(delay, "later-#{note}")
      when :slow then SlowJob.perform_async(0.2, "slow-#{note}")
      end
    end

    def stats
      s = Sidekiq::Stats.new
      {"processed" => s.processed, "failed" => s.failed, "enqueued" => s.enqueued,
       "scheduled" => s.scheduled_size, "retry" => s.retry_size, "dead" => s.dead_size,
       "processes" => s.processes_size, "queues" => s.queues,
       "job_runs" => JobRun.count, "events" => Event.count}
    end
  end
end
