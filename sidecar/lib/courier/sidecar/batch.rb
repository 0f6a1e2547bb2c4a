# frozen_string_literal: true

require "json"

module Courier
  module Sidecar
    # POST /v1/jobs/batch: several jobs in one signed request, run one after
    # another on the request's thread, each with its own outcome. Saves the
    # per-request HTTP/Rack cost, which is as large as a no-op job's.
    #
    #   request: {"jobs":[{"payload":"<job JSON exactly as in Redis>","queue":"default"}, ...]}
    #   answer:  200 {"status":"ok","results":[{"code":200,"status":"ok"},
    #                 {"code":422,"status":"failed",...}, {"code":400,"status":"refused",...}]}
    # results[i] is the answer /v1/jobs would have given for jobs[i] (its
    # status code in "code"). The whole request is refused (400/413, nothing
    # ran) when the envelope itself is bad (Envelope).
    class Batch
      attr_reader :max_body

      def initialize(app, max_body:, max_jobs:)
        @app = app
        @max_body = max_body
        @max_jobs = max_jobs
      end

      def call(body)
        entries = Envelope.jobs(body, @max_jobs, "batch")
        return Response.refused(entries.code, entries.reason) if entries.is_a?(Envelope::Refusal)

        results = entries.map { |entry| run_one(entry) }
        Response.json(200, "{\"status\":\"ok\",\"results\":[#{results.join(",")}]}")
      end

      private

      def run_one(entry)
        parsed = Envelope.entry(entry, @app.max_body, "batch")
        return JSON.generate("code" => parsed.code, "status" => "refused", "reason" => parsed.reason) if parsed.is_a?(Envelope::Refusal)

        code, answer = @app.execute(*parsed)
        code == 200 ? '{"code":200,"status":"ok"}' : "{\"code\":#{code},#{answer[1..]}"
      end
    end
  end
end
