# frozen_string_literal: true

require "base64"
require "json"
require "zlib"

module Courier
  module Sidecar
    # Stand-in for the exception of an earlier attempt when its class cannot
    # be rebuilt (not loaded, not an Exception). `error_class` keeps the name.
    class RemoteError < StandardError
      attr_reader :error_class

      def initialize(error_class, message)
        @error_class = error_class
        super(message)
      end
    end

    # Rebuilds the exception handed to sidekiq_retries_exhausted and the death
    # handlers from the payload's error_class / error_message /
    # error_backtrace (the job raised in an earlier request, possibly in
    # another process).
    #
    # When error_class names an already-loaded Exception subclass (never
    # autoloaded), an instance of that class is made WITHOUT running its own
    # initialize (custom initializers may need other arguments or have side
    # effects): Exception#initialize sets the message. Otherwise RemoteError.
    module RemoteErrorBuilder
      module_function

      def build(job, resolver)
        name = job["error_class"].is_a?(String) ? job["error_class"] : "UnknownError"
        message = job["error_message"].to_s
        klass = resolver.loaded_constant(name)
        error =
          if klass.is_a?(Class) && klass <= Exception
            klass.allocate.tap { |e| Exception.instance_method(:initialize).bind_call(e, message) }
          else
            RemoteError.new(name, message)
          end
        backtrace = decode_backtrace(job["error_backtrace"])
        error.set_backtrace(backtrace) if backtrace
        error
      end

      # Sidekiq stores Base64(zlib(JSON array)); 6.4.1 also accepts a plain array.
      def decode_backtrace(value)
        case value
        when Array then value.map(&:to_s)
        when String
          lines = JSON.parse(Zlib::Inflate.inflate(Base64.decode64(value)))
          lines.is_a?(Array) ? lines.map(&:to_s) : nil
        end
      rescue StandardError
        nil
      end
    end
  end
end
