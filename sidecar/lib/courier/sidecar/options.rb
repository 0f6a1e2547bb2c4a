# frozen_string_literal: true

require "optparse"

module Courier
  module Sidecar
    # Command-line / environment configuration, validated once at start-up.
    # A bad value raises UsageError naming the flag (the CLI exits 64).
    class Options
      class UsageError < StandardError; end

      DEFAULT_MAX_BODY = 1024 * 1024 # 1 MiB per job
      DEFAULT_MAX_BATCH_BODY = 16 * 1024 * 1024
      DEFAULT_MAX_BATCH_JOBS = 100

      ATTRS = %i[app port bind threads workers job_threads max_body max_batch_body max_batch_jobs max_stream_jobs
                 spill_after_ms inline_below_ms dev secret secret_file].freeze
      attr_accessor(*ATTRS)

      def self.parse(argv, env = ENV)
        new(env).tap { |o| o.parse!(argv) }
      end

      def initialize(env = ENV)
        @app = env["COURIER_SIDECAR_APP"]
        @port = 8088
        @bind = "127.0.0.1"
        @threads = Integer(env.fetch("RAILS_MAX_THREADS", "5"), exception: false) || 5
        @workers = 1
        @job_threads = nil # nil: as many as --threads
        @max_body = DEFAULT_MAX_BODY
        @max_batch_body = DEFAULT_MAX_BATCH_BODY
        @max_batch_jobs = DEFAULT_MAX_BATCH_JOBS
        @max_stream_jobs = nil # nil: as --max-batch-jobs
        @spill_after_ms = 5
        # A thread hand-off under the GVL costs more than a no-op job on a small VM:
        # classes averaging under this run on their stream's own Puma thread.
        @inline_below_ms = 1
        @dev = env["COURIER_SIDECAR_DEV"] == "1"
        @secret = env["COURIER_SECRET"]
        @secret_file = nil
      end

      def parse!(argv)
        parser.parse!(argv.dup)
        validate!
        self
      rescue OptionParser::ParseError => e
        raise UsageError, "#{e.message} (see courier-sidecar --help)"
      end

      def parser
        OptionParser.new do |o|
          o.banner = "Usage: courier-sidecar --app RAILS_ROOT [--port 8088] [--threads N] [--workers N] [--job-threads N] [--bind ADDR] [--max-body BYTES] [--dev]"
          o.on("--app RAILS_ROOT", "Rails app to boot (its config/environment.rb)") { |v| @app = v }
          o.on("--port PORT", "TCP port (default 8088)") { |v| @port = int("--port", v, 0..65_535) }
          o.on("--bind ADDR", "Address to bind (default 127.0.0.1)") { |v| @bind = v }
          o.on("--threads N", "Puma threads per process (default RAILS_MAX_THREADS or 5)") { |v| @threads = int("--threads", v, 1..1024) }
          o.on("--workers N", "Puma worker processes; >1 = cluster mode, app preloaded (default 1)") { |v| @workers = int("--workers", v, 1..256) }
          o.on("--job-threads N", "Threads per process running streamed jobs (default: --threads)") { |v| @job_threads = int("--job-threads", v, 1..1024) }
          o.on("--max-body BYTES", "Largest job body accepted (default 1048576)") { |v| @max_body = int("--max-body", v, 1..(1 << 31)) }
          o.on("--max-batch-body BYTES", "Largest /v1/jobs/batch or /v1/jobs/stream body (default 16777216)") { |v| @max_batch_body = int("--max-batch-body", v, 1..(1 << 31)) }
          o.on("--max-batch-jobs N", "Most jobs in one batch request (default 100)") { |v| @max_batch_jobs = int("--max-batch-jobs", v, 1..10_000) }
          o.on("--max-stream-jobs N", "Most jobs in one stream request (default: --max-batch-jobs)") { |v| @max_stream_jobs = int("--max-stream-jobs", v, 1..10_000) }
          o.on("--spill-after-ms N", "A quick streamed job still running after N ms sends the jobs waiting behind it " \
                                     "to the job threads (default 5; 0: every streamed job goes to the job threads)") { |v| @spill_after_ms = int("--spill-after-ms", v, 0..10_000) }
          o.on("--inline-below-ms N", "A streamed job whose class has lately averaged under N ms runs on its stream's own thread " \
                                      "(default 1)") { |v| @inline_below_ms = int("--inline-below-ms", v, 1..60_000) }
          o.on("--secret-file PATH", "File holding the shared secret (else COURIER_SECRET)") { |v| @secret_file = v }
          o.on("--dev", "Development: signatures not required (loud warning)") { @dev = true }
          o.on("--[no-]yjit", "Ruby's YJIT JIT where this Ruby has it (default on; env COURIER_SIDECAR_YJIT=0 turns it off)") { |v| @yjit = v }
          o.on("-h", "--help", "Show this help") do
            puts o
            exit 0
          end
        end
      end

      # Threads of the per-process pool that runs streamed jobs.
      def stream_threads
        @job_threads || @threads
      end

      def stream_jobs_limit
        @max_stream_jobs || @max_batch_jobs
      end

      private

      def int(flag, value, range)
        n = Integer(value, 10, exception: false)
        raise UsageError, "#{flag} must be an integer in #{range}, got #{value.inspect}" unless n && range.cover?(n)

        n
      end

      def validate!
        raise UsageError, "--app RAILS_ROOT is required" if @app.nil? || @app.empty?

        env_rb = File.join(File.expand_path(@app), "config", "environment.rb")
        raise UsageError, "--app #{@app}: #{env_rb} does not exist" unless File.file?(env_rb)

        if @secret_file
          raise UsageError, "--secret-file #{@secret_file}: not readable" unless File.readable?(@secret_file)

          @secret = File.read(@secret_file).chomp
        end
        return if @dev || (@secret && !@secret.empty?)

        raise UsageError, "no secret: set COURIER_SECRET or --secret-file (or --dev / COURIER_SIDECAR_DEV=1 for development)"
      end
    end
  end
end
