# frozen_string_literal: true

require "json"
require "socket"

module Courier
  module Sidecar
    # POST /v1/jobs/stream: the batch envelope (Envelope), but the jobs run
    # side by side on the process's job threads (JobPool) and each answer is
    # one NDJSON line, written the moment its job ends (finish order):
    #
    #   {"index":3,"jid":"…","code":200,"status":"ok"}
    #   {"index":0,"jid":"…","code":422,"status":"failed","error_class":…}
    #   {"done":true,"count":2}
    #
    # A line carries what /v1/jobs would have answered for jobs[index] (its
    # status code in "code"); the last line says the stream is complete.
    # Each job goes through App#outcome, the /v1/jobs path (JobRunner,
    # middleware, RunningJobs, so a cancel reaches just that job).
    #
    # The Puma thread only writes lines. When its client goes away, jobs not
    # yet started never start (the dispatcher puts unanswered jobs back on
    # their queues) and running ones finish; their answers are dropped.
    class Stream
      CONTENT_TYPE = "application/x-ndjson"

      attr_reader :max_body, :max_jobs

      # context: responds to stopping? (Lifecycle): jobs not yet started
      # when the process begins to stop are answered 503 instead.
      def initialize(app, pool:, running:, failure:, context:, max_body:, max_jobs:, logger:)
        @app = app
        @pool = pool
        @running = running
        @failure = failure
        @context = context
        @max_body = max_body
        @max_jobs = max_jobs
        @logger = logger
      end

      # The signature was checked (App#post); refuses a bad envelope whole,
      # else answers each refused entry and streams the Run as the body. The
      # jobs are queued once Puma begins to write it (Run#each).
      def call(body, env)
        entries = Envelope.jobs(body, @max_jobs, "stream")
        return Response.refused(entries.code, entries.reason) if entries.is_a?(Envelope::Refusal)

        run = Run.new(entries.size, running: @running, socket: env["puma.socket"], context: @context, logger: @logger)
        valid = entries.each_with_index.filter_map { |entry, index| accept(run, index, entry) }
        run.on_start { valid.each { |index, job, queue| submit(run, index, job, queue) } }
        [200, {"Content-Type" => CONTENT_TYPE}, run]
      end

      private

      # [index, job, queue] of a valid entry; a refused one is answered at once.
      def accept(run, index, entry)
        parsed = Envelope.entry(entry, @app.max_body, "stream")
        if parsed.is_a?(Envelope::Refusal)
          run.answer(index, nil, parsed.code, Envelope.refusal_body(parsed.reason))
          return nil
        end

        payload, queue = parsed
        [index, @app.parse(payload), queue]
      rescue App::Malformed => e
        run.answer(index, jid_of(payload), 400, Envelope.refusal_body(e.message))
        nil
      end

      # Waits for a job thread, cancellable by jid meanwhile.
      def submit(run, index, job, queue)
        jid = job["jid"].is_a?(String) ? job["jid"] : nil
        slot = @running.enqueue(jid) do |reason, error|
          run.answer(index, jid, 409, @failure.interrupted_body(error, reason), started: false)
        end
        run.track(index, slot)
        @pool.submit { perform(run, index, jid, job, queue, slot) }
      end

      # On a job thread. A slot cancelled or dropped while queued has had its
      # answer (or needs none): the job must not start. Nor does one picked
      # up once the process is stopping (as Run#drain answers it).
      def perform(run, index, jid, job, queue, slot)
        return unless @running.claim(slot)
        return run.answer(index, jid, 503, Run::UNAVAILABLE, started: false) if @context&.stopping?

        code, answer = @app.outcome(job, queue)
        run.answer(index, jid, code, answer)
      rescue Exception => e # rubocop:disable Lint/RescueException -- every job must get its line, or the stream never ends
        @logger.error("courier-sidecar: internal error in streamed job #{jid}: #{e.class}: #{e.message}")
        run.answer(index, jid, 500, JSON.generate("status" => "error", "reason" => "internal error: #{e.class}: #{e.message}"))
      end

      # The jid of a payload refused as malformed, when it has one.
      def jid_of(payload)
        doc = JSON.parse(payload)
        doc["jid"] if doc.is_a?(Hash) && doc["jid"].is_a?(String)
      rescue JSON::ParserError
        nil
      end

      # One stream: the answers still due, and the Rack body that writes them.
      # Answers come from job threads (and from cancels of queued jobs); Puma's
      # request thread takes them in #each.
      class Run
        # How often a waiting stream looks at its client and the process state.
        POLL_SECONDS = 0.2
        OK_TAIL = '"status":"ok"}'
        UNAVAILABLE = JSON.generate("status" => "unavailable", "reason" => "the executor is shutting down; the job was not started")

        # Raised out of #each when the client has gone: Puma takes an IOError
        # there for a lost connection (nothing more written, nothing logged).
        class ClientGone < IOError; end

        def initialize(count, running:, socket:, context:, logger:)
          @count = count
          @due = count
          @answered = Array.new(count, false)
          @slots = {} # index → RunningJobs::Queued, until the job starts or is answered
          @lines = []
          @running = running
          @context = context
          @logger = logger
          # Only a plain socket can be peeked at and uncorked (not under Rack::Test).
          @socket = socket.is_a?(::BasicSocket) ? socket : nil
          @lock = Mutex.new
          @arrived = ConditionVariable.new
          @start = nil # queues the jobs (Stream#call), until #each calls it
          @abandoned = false
          @drained = false
          @finished = false
        end

        # What #each calls to queue the jobs, once.
        def on_start(&block)
          @start = block
        end

        def track(index, slot)
          @lock.synchronize { @slots[index] = slot unless @answered[index] }
        end

        # Job `index`'s answer, once (a later one for the same index is
        # ignored); false when it was not sent (duplicate, or client gone).
        def answer(index, jid, code, body, started: true)
          line = self.class.line(index, jid, code, body, started)
          @lock.synchronize do
            return false if @answered[index]

            @answered[index] = true
            @slots.delete(index)
            @due -= 1
            unless @abandoned
              @lines << line
              @arrived.signal
              return true
            end
          end
          # The dispatcher requeues the job as unanswered, so it will run again.
          @logger.info("courier-sidecar: answer #{code} of streamed job #{jid} dropped: its client went away")
          false
        end

        # One JSON line per job, in the order they end, then the final line.
        # The refusals go out before the jobs are queued: once job threads
        # run, this thread may wait a whole GVL time slice (100 ms) to write.
        def each
          prepare_socket
          push # Puma 5 has already written the headers: send them now
          while (line = ready_line)
            yield line
            push
          end
          start
          while (line = next_line)
            yield line
            push
          end
          yield "{\"done\":true,\"count\":#{@count}}\n"
          @finished = true
        end

        # Puma calls this after the last write, or after a failed one.
        def close
          abandon unless @finished
        end

        def self.line(index, jid, code, body, started)
          head = +"{\"index\":#{index},\"jid\":#{jid ? JSON.generate(jid) : "null"},\"code\":#{code},"
          head << '"started":false,' unless started
          head << (body ? body[1..] : OK_TAIL) << "\n"
        end

        private

        def ready_line
          @lock.synchronize { @lines.shift }
        end

        # Queues the jobs unless the client went away first (then none starts).
        def start
          start = @lock.synchronize do
            next nil if @abandoned

            @start.tap { @start = nil }
          end
          start&.call
        end

        # The next answer, waiting as long as jobs run; nil once all are sent.
        # Checks for a stop at every line, for a gone client when idle (a
        # write to it fails anyway).
        def next_line
          loop do
            drain if !@drained && @context&.stopping?
            @lock.synchronize do
              @arrived.wait(@lock, POLL_SECONDS) if @lines.empty? && @due.positive?
              return @lines.shift unless @lines.empty?
              return nil if @due.zero?
            end
            raise ClientGone, "stream client went away" if client_gone?
          end
        end

        # The process is stopping: jobs not yet started never will here.
        # They are answered 503 (executor unavailable: the dispatcher puts
        # them back on their queues without using a retry).
        def drain
          @drained = true
          @lock.synchronize { @slots.dup }.each do |index, slot|
            answer(index, slot.jid, 503, UNAVAILABLE, started: false) if @running.drop(slot)
          end
        end

        # The client went away (or Puma could not write): no queued job of
        # this stream starts; running ones finish, unanswered.
        def abandon
          queued, slots = @lock.synchronize do
            @abandoned = true
            [!@start.nil?, @slots.dup].tap { @start = nil }
          end
          dropped = slots.count { |_, slot| @running.drop(slot) }
          due = @lock.synchronize { @due }
          return if due.zero?

          not_started = queued ? due : dropped
          @logger.warn("courier-sidecar: stream client went away with #{due} of #{@count} jobs unanswered: " \
                       "#{not_started} not started, #{due - not_started} running (they finish, unanswered)")
        end

        # EOF or a reset on the client's socket; a peek never consumes a byte.
        def client_gone?
          return false unless @socket

          case @socket.recv_nonblock(1, ::Socket::MSG_PEEK, exception: false)
          when nil, "" then true
          else false # :wait_readable, or bytes of a next request
          end
        rescue IOError, SystemCallError
          true
        end

        # Puma corks the socket (TCP_CORK) while it writes a response, which
        # holds a short line up to 200 ms: uncork after each line (pushing it
        # out whole, NODELAY so Nagle does not hold it either) and cork again.
        def prepare_socket
          @corked = false
          return unless @socket.is_a?(::TCPSocket) && defined?(::Socket::TCP_CORK)

          @socket.setsockopt(::Socket::IPPROTO_TCP, ::Socket::TCP_NODELAY, 1)
          @corked = @socket.getsockopt(::Socket::IPPROTO_TCP, ::Socket::TCP_CORK).int != 0
        rescue IOError, SystemCallError
          @corked = false
        end

        def push
          return unless @corked

          @socket.setsockopt(::Socket::IPPROTO_TCP, ::Socket::TCP_CORK, 0)
          @socket.setsockopt(::Socket::IPPROTO_TCP, ::Socket::TCP_CORK, 1)
        rescue IOError, SystemCallError
          @corked = false
        end
      end
    end
  end
end
