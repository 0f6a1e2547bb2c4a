# frozen_string_literal: true

require "json"

module Courier
  module Sidecar
    # The Rack app: routes protocol v1 and turns each request into a refusal
    # or a run. Deliberately no Rack::Builder / middleware stack / Rails
    # request logging: every layer costs microseconds on every job.
    #
    # Order of checks for a POST (each refusal means nothing ran; batch and
    # stream check their envelope, then each job, in the same order):
    #   405 wrong method → 413 body too large → 401 signature →
    #   400 JSON / shape → class: 422 when it does not resolve to a job class
    #   (a failed attempt, nothing ran) → run (200 / 422 / 409 interrupted).
    class App
      JOBS = "/v1/jobs"
      EXHAUSTED = "/v1/jobs/exhausted"
      BATCH = "/v1/jobs/batch"
      STREAM = "/v1/jobs/stream"
      CANCEL = "/v1/jobs/cancel"
      HEALTH = ["/v1/health", "/health"].freeze

      # Raised for a payload that must not run; message = reason.
      class Malformed < StandardError; end

      # The /v1/jobs/batch and /v1/jobs/stream handlers (Batch, Stream), or
      # nil to answer 404 there; health lists the ones set as features.
      attr_accessor :batch, :stream

      # The process's job slots (JobPool), or nil: a /v1/jobs or batch job
      # then runs as soon as its request is read. With them it waits for a
      # slot, as exhausted hooks do, so streamed and single jobs together
      # never pass the capacity health advertises, nor app code the pools
      # sized for it (Boot.rails_app).
      attr_accessor :slots

      # canceller: responds to cancel(jid, reason) → true if it interrupted a
      # running job (RunningJobs, or a SiblingChannel across Puma workers).
      # running: this process's RunningJobs, where a job waiting for a slot
      # is queued (#on_slot).
      def initialize(runner:, exhausted:, failure:, resolver:, verifier:, max_body:, logger:, adapter:, canceller:, running:, info: {})
        @runner = runner
        @running = running
        @exhausted = exhausted
        @failure = failure
        @resolver = resolver
        @verifier = verifier # nil in --dev mode: signatures not required
        @max_body = max_body
        @logger = logger
        @adapter = adapter
        @canceller = canceller
        @health_info = {"status" => "ok", "protocol" => PROTOCOL_VERSION, "version" => VERSION,
                        "features" => nil, "signatures" => !verifier.nil?}.merge(info)
        @health = nil
      end

      # Replaced after fork in cluster mode (see CLI): cancels then also reach
      # sibling workers.
      attr_writer :canceller

      def call(env)
        path = env["PATH_INFO"]
        if path == JOBS
          post(env) { |body| run_job(body, delivery(env)) }
        elsif path == EXHAUSTED
          # ?only=death_handlers: a job with retries disabled died; Sidekiq runs
          # only the death handlers then, not sidekiq_retries_exhausted.
          death_only = env["QUERY_STRING"].to_s.split("&").include?("only=death_handlers")
          post(env) { |body| run_exhausted(body, death_only) }
        elsif path == CANCEL
          post(env) { |body| cancel(body) }
        elsif path == BATCH && @batch
          post(env, @batch.max_body) { |body| @batch.call(body) }
        elsif path == STREAM && @stream
          post(env, @stream.max_body) { |body| @stream.call(body, env) }
        elsif HEALTH.include?(path)
          return Response.refused(405, "#{env["REQUEST_METHOD"]} not allowed on #{path}", {"Allow" => "GET, HEAD"}) unless %w[GET HEAD].include?(env["REQUEST_METHOD"])

          Response.json(200, health)
        else
          Response.refused(404, "no such endpoint: #{env["REQUEST_METHOD"]} #{path}")
        end
      rescue StandardError => e
        @logger.error("courier-sidecar: internal error on #{path}: #{e.class}: #{e.message}")
        Response.error("internal error: #{e.class}: #{e.message}")
      end

      # One job: a [status, body-or-nil] pair shared with the batch endpoint.
      # `body` nil means the constant ok answer. `via` as in #outcome.
      def execute(jobstr, via)
        job = parse(jobstr)
        @slots ? on_slot(job) { outcome(job, via) } : outcome(job, via)
      rescue Malformed => e
        [400, JSON.generate("status" => "refused", "reason" => e.message)]
      end

      # Runs the block once this thread holds a job slot: at once if one is
      # free (nothing to wait for, so nothing to make cancellable), else
      # after #wait_for_slot.
      def on_slot(job, &block)
        return wait_for_slot(job, &block) unless @slots.try_take

        begin
          yield
        ensure
          @slots.give_back
        end
      end

      # The job waits for a slot queued in RunningJobs like a stream's, so a
      # cancel (the dispatcher's timeout or shutdown, or an operator's)
      # answers it and it never starts: the 409 with "started":false.
      # Without that it would run after the dispatcher had already retried
      # it or put it back.
      def wait_for_slot(job)
        jid = job["jid"].is_a?(String) ? job["jid"] : nil
        wait = JobPool::Wait.new
        cancelled = Thread::Queue.new
        queued = @running.enqueue(jid) do |reason, error|
          cancelled << [409, @failure.interrupted_body(error, reason, started: false)]
          @slots.abandon(wait)
        end
        answer = @slots.hold(wait) { yield if @running.claim(queued) }
        # Abandoned, or the slot came as the cancel settled it: the cancel's
        # callback brings the answer (it runs just after the settling).
        answer.nil? || answer.equal?(JobPool::Wait::ABANDONED) ? cancelled.pop : answer
      ensure
        @running.drop(queued) if queued
      end

      # Runs a parsed, valid job (the /v1/jobs path for every endpoint):
      # [200, nil], [422, body] or [409, body]. `via`: the queue it was
      # fetched from (nil: the payload's), or a Delivery that also carries
      # the dispatcher's tenant and traceparent for it.
      def outcome(job, via)
        if via.is_a?(Delivery)
          queue = via.queue
          tenant = via.tenant
          traceparent = via.traceparent
        else
          queue = via
        end
        result = @runner.call(job, queue || job["queue"] || "default", tenant, traceparent)
        if result.interrupted
          [409, @failure.interrupted_body(result.error, result.interrupted)]
        elsif result.error
          [422, @failure.body(job, result.error, result.job_class)]
        else
          [200, nil]
        end
      end

      # The payload as a Hash with a "class" string and an "args" array;
      # raises Malformed (a 400) otherwise.
      def parse(body)
        job = JSON.parse(body)
        raise Malformed, "job must be a JSON object, got #{job.class}" unless job.is_a?(Hash)
        raise Malformed, "job has no \"class\" string" unless job["class"].is_a?(String)
        raise Malformed, "job \"args\" must be an array, got #{job["args"].class}" unless job["args"].is_a?(Array)

        job
      rescue JSON::ParserError => e
        raise Malformed, "malformed JSON: #{e.message[0, 200]}"
      end

      attr_reader :max_body

      # Built once per process: the pid differs in each forked Puma worker.
      def health
        pid = Process.pid
        @health = nil unless @health&.first == pid
        @health ||= [pid, JSON.generate(@health_info.merge("features" => features, "pid" => pid))]
        @health.last
      end

      # The optional endpoints served (protocol: GET /v1/health "features").
      def features
        [("batch" if @batch), "cancel", ("stream" if @stream)].compact
      end

      private

      def post(env, limit = @max_body)
        unless env["REQUEST_METHOD"] == "POST"
          return Response.refused(405, "#{env["REQUEST_METHOD"]} not allowed on #{env["PATH_INFO"]}", {"Allow" => "POST"})
        end

        body = BodyReader.read(env, limit)
        @verifier&.verify!(env["HTTP_COURIER_SIGNATURE"], body)
        yield body
      rescue BodyReader::TooLarge => e
        Response.refused(413, e.message)
      rescue Signature::Invalid => e
        @logger.warn("courier-sidecar: refused unsigned/badly signed request (401): #{e.message}")
        Response.refused(401, e.message)
      end

      def run_job(body, via)
        status, answer = execute(body, via)
        status == 200 ? Response.ok : Response.json(status, answer)
      end

      # A class that does not resolve still gets the death handlers.
      def run_exhausted(body, death_only = false)
        job = parse(body)
        klass = begin
          resolve(job)
        rescue JobResolver::Unresolvable
          nil
        end
        # On a job slot like any job: the hooks use the same connection pools.
        if @slots
          @slots.hold { @exhausted.call(job, klass, death_only: death_only) }
        else
          @exhausted.call(job, klass, death_only: death_only)
        end
        Response.ok
      rescue Malformed => e
        Response.refused(400, e.message)
      end

      # {"jid":"…","reason":"shutdown"|"timeout"|"cancel"}
      def cancel(body)
        doc = JSON.parse(body)
        jid = doc["jid"] if doc.is_a?(Hash)
        reason = RunningJobs::REASONS[doc["reason"]] if doc.is_a?(Hash)
        unless jid.is_a?(String) && RunningJobs::JID.match?(jid) && reason
          return Response.refused(400, "cancel body must be {\"jid\":\"…\",\"reason\":\"shutdown|timeout|cancel\"}")
        end

        if @canceller.cancel(jid, reason)
          @logger.info("courier-sidecar: interrupted job #{jid} (#{reason})")
          Response.json(200, '{"status":"cancelled"}')
        else
          Response.json(404, '{"status":"not_running"}')
        end
      rescue JSON::ParserError => e
        Response.refused(400, "malformed cancel JSON: #{e.message[0, 200]}")
      end

      def resolve(job)
        @resolver.resolve(job["class"])
      end

      # Courier-Queue (the queue), Courier-Tenant and traceparent.
      def delivery(env)
        q = env["HTTP_COURIER_QUEUE"]
        Delivery.of(q.nil? || q.empty? ? nil : q, env["HTTP_COURIER_TENANT"], env["HTTP_TRACEPARENT"])
      end
    end
  end
end
