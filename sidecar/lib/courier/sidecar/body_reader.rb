# frozen_string_literal: true

module Courier
  module Sidecar
    # Reads a request body with a size limit. A declared Content-Length over
    # the limit is refused before a byte is read; a body without one (chunked)
    # is read up to limit + 1 bytes and refused if that last byte arrives.
    module BodyReader
      class TooLarge < StandardError; end

      module_function

      def read(env, limit)
        declared = env["CONTENT_LENGTH"]
        if declared && !declared.empty? && declared.to_i > limit
          raise TooLarge, "body of #{declared} bytes is over the #{limit}-byte limit"
        end

        input = env["rack.input"]
        return +"" unless input

        body = input.read(limit + 1) || +""
        raise TooLarge, "body is over the #{limit}-byte limit" if body.bytesize > limit

        body
      end
    end
  end
end
