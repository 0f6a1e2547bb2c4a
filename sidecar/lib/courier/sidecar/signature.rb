# frozen_string_literal: true

require "openssl"

module Courier
  module Sidecar
    # Verifies `Courier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
    #
    # The signed string binds the timestamp to the exact body bytes, so a
    # captured request cannot be replayed with another body, and replaying the
    # same body only works within the tolerance window. Several `v1=` entries
    # are accepted (any match wins) so a dispatcher can sign with an old and a
    # new secret during rotation.
    class Signature
      TOLERANCE = 300 # seconds either side of now
      HEX64 = /\A\h{64}\z/
      # The form the dispatcher sends; anything else takes the general parser.
      COMMON = /\At=(\d{1,12}),v1=(\h{64})\z/

      # Why a request was refused; the message goes into the 401 body.
      class Invalid < StandardError; end

      def self.sign(secret, body, time = Time.now.to_i)
        "t=#{time},v1=#{OpenSSL::HMAC.hexdigest("SHA256", secret, "#{time}.#{body}")}"
      end

      def initialize(secret, tolerance: TOLERANCE, clock: -> { Time.now.to_i })
        raise ArgumentError, "signature secret must not be empty" if secret.nil? || secret.empty?

        @secret = secret.b.freeze
        # A keyed context copied per request: copying skips re-keying and the
        # OpenSSL 3 algorithm fetch, ~3x cheaper than HMAC.hexdigest.
        @keyed = OpenSSL::HMAC.new(@secret, "SHA256")
        @tolerance = tolerance
        @clock = clock
      end

      # Raises Invalid with the reason, returns true otherwise.
      def verify!(header, body)
        raise Invalid, "missing Courier-Signature header" if header.nil? || header.empty?

        if (m = COMMON.match(header))
          time = m[1].to_i
          candidates = [m[2].downcase]
        else
          time, candidates = parse(header)
        end
        skew = (@clock.call - time).abs
        raise Invalid, "signature timestamp is #{skew}s away from now (tolerance #{@tolerance}s)" if skew > @tolerance

        hmac = @keyed.dup
        hmac.update(time.to_s)
        hmac.update(".")
        hmac.update(body)
        expected = hmac.hexdigest
        return true if candidates.any? { |sig| OpenSSL.fixed_length_secure_compare(sig, expected) }

        raise Invalid, "signature does not match the body (wrong secret or altered body)"
      end

      private

      def parse(header)
        time = nil
        candidates = []
        header.split(",").each do |part|
          key, value = part.strip.split("=", 2)
          case key
          when "t" then time = Integer(value, 10, exception: false)
          when "v1" then candidates << value.downcase if value&.match?(HEX64)
          end
        end
        raise Invalid, "Courier-Signature has no valid t=<unix seconds>" unless time
        raise Invalid, "Courier-Signature has no v1=<64 hex digits>" if candidates.empty?

        [time, candidates]
      end
    end
  end
end
