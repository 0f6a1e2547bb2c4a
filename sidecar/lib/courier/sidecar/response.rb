# frozen_string_literal: true

require "json"

module Courier
  module Sidecar
    # Rack triples for every answer of protocol v1. Constant answers are built
    # once; the hot path (200 ok) allocates nothing but the triple.
    module Response
      module_function

      OK_BODY = '{"status":"ok"}'
      OK_HEADERS = {"Content-Type" => "application/json", "Content-Length" => "15"}.freeze
      OK_CHUNKS = [OK_BODY].freeze

      def json(status, body, extra_headers = nil)
        headers = {"Content-Type" => "application/json", "Content-Length" => body.bytesize.to_s}
        headers.merge!(extra_headers) if extra_headers
        [status, headers, [body]]
      end

      # Frozen headers and body: Puma only reads them.
      def ok
        [200, OK_HEADERS, OK_CHUNKS]
      end

      def failed(body)
        json(422, body)
      end

      # 400/401/404/405/413: nothing ran; `reason` says why.
      def refused(status, reason, extra_headers = nil)
        json(status, JSON.generate("status" => "refused", "reason" => reason), extra_headers)
      end

      def error(reason)
        json(500, JSON.generate("status" => "error", "reason" => reason))
      end
    end
  end
end
