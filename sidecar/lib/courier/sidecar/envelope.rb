# frozen_string_literal: true

require "json"

module Courier
  module Sidecar
    # The envelope shared by POST /v1/jobs/batch and POST /v1/jobs/stream:
    #
    #   {"jobs":[{"payload":"<job JSON exactly as in Redis>","queue":"default",
    #             "tenant":"acme","traceparent":"00-…-…-01"}, ...]}
    #
    # ("queue", "tenant" and "traceparent" optional).
    #
    # A bad envelope refuses the whole request (400/413, nothing runs); a bad
    # entry refuses only that job. `name` ("batch", "stream") goes into the reasons.
    module Envelope
      # Why a request or one entry is refused: its status code and reason.
      Refusal = Struct.new(:code, :reason)

      module_function

      # The entries, or a Refusal for the whole request.
      def jobs(body, max_jobs, name)
        doc = JSON.parse(body)
        jobs = doc.is_a?(Hash) ? doc["jobs"] : nil
        return Refusal.new(400, "#{name} body must be {\"jobs\":[...]}") unless jobs.is_a?(Array)
        return Refusal.new(413, "#{name} has #{jobs.size} jobs, over the limit of #{max_jobs}") if jobs.size > max_jobs

        jobs
      rescue JSON::ParserError => e
        Refusal.new(400, "malformed #{name} JSON: #{e.message[0, 200]}")
      end

      # [payload, via] of one entry, or a Refusal for that job alone. `via`
      # is what App#outcome takes: the entry's queue (or nil), or a Delivery
      # when the entry also names a tenant or a traceparent.
      def entry(entry, max_body, name)
        payload = entry.is_a?(Hash) ? entry["payload"] : nil
        return Refusal.new(400, "#{name} entry needs a \"payload\" string (the job JSON)") unless payload.is_a?(String)
        if payload.bytesize > max_body
          return Refusal.new(413, "job payload of #{payload.bytesize} bytes is over the #{max_body}-byte limit")
        end

        queue = entry["queue"].is_a?(String) ? entry["queue"] : nil
        [payload, Delivery.of(queue, entry["tenant"], entry["traceparent"])]
      end

      def refusal_body(reason)
        JSON.generate("status" => "refused", "reason" => reason)
      end
    end
  end
end
