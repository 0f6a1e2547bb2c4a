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
    # ran) when the envelope itself is bad.
    class Batch
      attr_reader :max_body

      def initialize(app, max_body:, max_jobs:)
        @app = app
        @max_body = max_body
        @max_jobs = max_jobs
        @job_limit = nil
      end

      def call(body)
        entries = envelope(body)
        return entries if entries.is_a?(Array) && entries.first.is_a?(Integer) # a refusal triple

        results = entries.map { |entry| run_one(entry) }
        Response.json(200, "{\"status\":\"ok\",\"results\":[#{results.join(",")}]}")
      end

      private

      def envelope(body)
        doc = JSON.parse(body)
        jobs = doc.is_a?(Hash) ? doc["jobs"] : nil
        return Response.refused(400, "batch body must be {\"jobs\":[...]}") unless jobs.is_a?(Array)
        return Response.refused(413, "batch has #{jobs.size} jobs, over the limit of #{@max_jobs}") if jobs.size > @max_jobs

        jobs
      rescue JSON::ParserError => e
        Response.refused(400, "malformed batch JSON: #{e.message[0, 200]}")
      end

      def run_one(entry)
        payload = entry.is_a?(Hash) ? entry["payload"] : nil
        return refused(400, "batch entry needs a \"payload\" string (the job JSON)") unless payload.is_a?(String)

        limit = @app.max_body
        return refused(413, "job payload of #{payload.bytesize} bytes is over the #{limit}-byte limit") if payload.bytesize > limit

        queue = entry["queue"].is_a?(String) ? entry["queue"] : nil
        code, answer = @app.execute(payload, queue)
        code == 200 ? '{"code":200,"status":"ok"}' : "{\"code\":#{code},#{answer[1..]}"
      end

      def refused(code, reason)
        JSON.generate("code" => code, "status" => "refused", "reason" => reason)
      end
    end
  end
end
