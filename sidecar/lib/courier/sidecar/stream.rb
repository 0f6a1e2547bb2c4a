# frozen_string_literal: true

require "json"
require "socket"

module Courier
  module Sidecar
    # POST /v1/jobs/stream: the batch envelope (Envelope), but the jobs run
    # side by side and each answer is one NDJSON line, written the moment its
    # job ends (finish order):
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
    # Who runs the jobs (each on one of the JobPool's slots): on a real
    # socket, the stream's own Puma thread runs them one after another while
    # they are quick, and whichever thread ends a job writes its line straight
    # to the socket. Once a job has run SpillTimer#after with others waiting
    # behind it, those go to the pool's threads. Quick jobs then cost what
    # /v1/jobs/batch costs (no thread hand-off per job, the GVL stays put),
    # and a slow one holds the others back by that delay at most, never their
    # answers. Without a socket to write to from any thread (Rack::Test), or
    # with no SpillTimer, every job goes to the pool and the Puma thread
    # writes the lines.
    #
    # When the client goes away, jobs not yet started never start (the
    # dispatcher puts unanswered jobs back on their queues) and running ones
    # finish; their answers are dropped.
    class Stream
      CONTENT_TYPE = "application/x-ndjson"

      attr_reader :max_body, :max_jobs

      # context: responds to stopping? (Lifecycle): jobs not yet started
      # when the process begins to stop are answered 503 instead.
      # spill: a SpillTimer, or nil for "every job on the pool"; times: the
      # JobTimes that tell the quick jobs (those a Puma thread may run).
      def initialize(app, pool:, running:, failure:, context:, max_body:, max_jobs:, logger:, spill:, times:)
        @app = app
        @pool = pool
        @spill = spill
        @times = times
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

        run = Run.new(entries.size, running: @running, socket: env["puma.socket"], context: @context, logger: @logger,
                                    pool: @pool, spill: @spill, perform: method(:perform), quick: method(:quick?))
        valid = entries.each_with_index.filter_map { |entry, index| accept(run, index, entry) }
        run.on_start { valid.map { |index, job, via| enqueue(run, index, job, via) } }
        [200, {"Content-Type" => CONTENT_TYPE}, run]
      end

      private

      # [index, job, via] of a valid entry (via: App#outcome's queue or
      # Delivery); a refused one is answered at once.
      def accept(run, index, entry)
        parsed = Envelope.entry(entry, @app.max_body, "stream")
        if parsed.is_a?(Envelope::Refusal)
          run.answer(index, nil, parsed.code, Envelope.refusal_body(parsed.reason))
          return nil
        end

        payload, via = parsed
        [index, @app.parse(payload), via]
      rescue App::Malformed => e
        run.answer(index, jid_of(payload), 400, Envelope.refusal_body(e.message))
        nil
      end

      # A #perform argument list whose job is quick lately (JobTimes).
      def quick?(args)
        @times.quick?(JobTimes.name_of(args[3]))
      end

      # Registers a job as queued, cancellable by jid until it starts; the
      # arguments of #perform.
      def enqueue(run, index, job, via)
        jid = job["jid"].is_a?(String) ? job["jid"] : nil
        slot = @running.enqueue(jid) do |reason, error|
          run.answer(index, jid, 409, @failure.interrupted_body(error, reason), started: false)
        end
        run.track(index, slot)
        [run, index, jid, job, via, slot]
      end

      # On a job slot (a job thread, or the stream's Puma thread). A slot
      # cancelled or dropped while queued has had its answer (or needs none):
      # the job must not start. Nor does one picked up once the process is
      # stopping (as Run#drain answers it).
      def perform(run, index, jid, job, via, slot)
        return unless @running.claim(slot)
        return run.answer(index, jid, 503, Run::UNAVAILABLE, started: false) if @context&.stopping?

        started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        code, answer = @app.outcome(job, via)
        @times.record(JobTimes.name_of(job), Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
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

      # One stream: the jobs it still has to run and the answers still due,
      # and the Rack body that writes them. Answers come from whichever thread
      # ran the job (and from cancels of queued jobs).
      class Run
        # How often a waiting stream looks at its client and the process state.
        POLL_SECONDS = 0.2
        OK_TAIL = '"status":"ok"}'
        UNAVAILABLE = JSON.generate("status" => "unavailable", "reason" => "the executor is shutting down; the job was not started")
        # Written first on a socket: Puma 6 sends the status line and headers
        # with the body's first part only, and every later line may come from
        # another thread. Readers ignore blank lines (docs/protocol.md).
        OPENING = "\n"

        # Raised out of #each when the client has gone: Puma takes an IOError
        # there for a lost connection (nothing more written, nothing logged).
        class ClientGone < IOError; end

        # A line of a quick job the Puma thread ran is held while it runs the
        # next quick one, up to this long, so a run of quick jobs costs one
        # write (and one wake-up of the client) instead of one each.
        HOLD_SECONDS = 0.001

        # perform: called with a job's #enqueue arguments on the slot that
        # runs it; quick: whether such a job is quick lately (Stream#quick?).
        def initialize(count, running:, socket:, context:, logger:, pool:, spill:, perform:, quick:)
          @count = count
          @due = count
          @answered = Array.new(count, false)
          @slots = {} # index → RunningJobs::Queued, until the job starts or is answered
          @lines = [] # answers not yet written (the Puma thread writes them)
          @running = running
          @context = context
          @logger = logger
          @pool = pool
          @spill = spill
          @perform = perform
          @quick = quick
          @held = [] # answers of quick jobs the Puma thread ran, not written yet
          @held_since = nil
          @inline_thread = nil
          # Only a plain socket can be peeked at, uncorked, and written to from any thread (not under Rack::Test).
          @socket = socket.is_a?(::BasicSocket) ? socket : nil
          @inline = !@socket.nil? && !spill.nil?
          @lock = Mutex.new
          @write_lock = Mutex.new
          @arrived = ConditionVariable.new
          @start = nil # the jobs' #enqueue arguments, built once #each begins
          @pending = [] # jobs for this stream's Puma thread, until it runs or spills them
          @inline_since = nil # when the Puma thread began its current job
          @watched = false # by the SpillTimer
          @polled_at = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          @direct = false # answers are written straight to the socket
          @abandoned = false
          @drained = false
          @finished = false
        end

        # What #each calls to register the jobs, once: it returns their #perform arguments.
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
          direct = @lock.synchronize do
            return false if @answered[index]

            @answered[index] = true
            @slots.delete(index)
            unless @direct || @abandoned
              @due -= 1
              @lines << line
              @arrived.signal
              return true
            end
            if Thread.current.equal?(@inline_thread) && !@abandoned
              @held << line
              @held_since ||= Process.clock_gettime(Process::CLOCK_MONOTONIC)
              return true
            end
            @direct && !@abandoned
          end
          sent = direct && write(line)
          # Counted once written: the done line must never overtake it.
          @lock.synchronize do
            @due -= 1
            @arrived.signal if @due.zero? || @abandoned
          end
          return true if sent

          # The dispatcher requeues the job as unanswered, so it will run again.
          @logger.info("courier-sidecar: answer #{code} of streamed job #{jid} dropped: its client went away")
          false
        end

        # One JSON line per job, in the order they end, then the final line.
        # The refusals go out before any job runs.
        def each
          if @socket
            yield OPENING
            prepare_socket
            go_direct
          else
            while (line = ready_line)
              yield line
            end
          end
          start
          run_inline
          while (line = next_line)
            yield line
          end
          done = "{\"done\":true,\"count\":#{@count}}\n"
          if @direct
            raise ClientGone, "stream client went away" unless write(done)
          else
            yield done
          end
          @finished = true
        end

        # Puma calls this after the last write, or after a failed one.
        def close
          abandon unless @finished
        end

        # The SpillTimer's look at a stream with jobs not yet started, while
        # its Puma thread may be busy running one: once that job has run
        # `after` seconds the waiting jobs go to the job threads; on a stop
        # the queued ones are answered 503; every POLL_SECONDS a gone client
        # is noticed. True once there is nothing more to watch.
        def check(now, after)
          poll = false
          flush = false
          @lock.synchronize do
            return true if @abandoned || @finished

            flush = !@held.empty? && now - @held_since >= HOLD_SECONDS
            return true unless flush || @slots.each_value.any? { |slot| slot.state == :queued }

            spill if !@pending.empty? && @inline_since && now - @inline_since >= after
            if now - @polled_at >= POLL_SECONDS
              @polled_at = now
              poll = true
            end
          end
          flush_held if flush
          if @context&.stopping?
            drain
          elsif poll && client_gone?
            abandon
          end
          false
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

        # From now on every answer is written by the thread that has it; the
        # refusals answered so far go first.
        def go_direct
          early = @lock.synchronize do
            @direct = true
            @lines.slice!(0..)
          end
          raise ClientGone, "stream client went away" unless early.all? { |line| write(line) }
        end

        # Registers the jobs unless the client went away first (then none
        # starts); the Puma thread keeps them to run itself, or the pool gets them.
        def start
          start = @lock.synchronize do
            next nil if @abandoned

            @start.tap { @start = nil }
          end
          return unless start

          jobs = start.call
          quick, other = @inline ? jobs.partition(&@quick) : [[], jobs]
          other.each { |job| @pool.submit { @perform.call(*job) } }
          @lock.synchronize { @pending.concat(quick) } unless quick.empty?
        end

        # The Puma thread runs the stream's quick jobs while it has a free
        # slot, until they are done, spilled, or the client has gone; their
        # lines go out together unless one has waited HOLD_SECONDS.
        def run_inline
          return unless @inline

          @inline_thread = Thread.current
          while (job = next_inline)
            begin
              @perform.call(*job)
            ensure
              flush = @lock.synchronize do
                @inline_since = nil
                @held_since && (@pending.empty? || Process.clock_gettime(Process::CLOCK_MONOTONIC) - @held_since >= HOLD_SECONDS)
              end
              @pool.give_back
              flush_held if flush
            end
          end
        ensure
          @inline_thread = nil
          flush_held
        end

        # Writes the held lines as one chunk (from the Puma thread, or the
        # SpillTimer when the Puma thread is stuck in a job).
        def flush_held
          lines, count, gone = @lock.synchronize do
            next nil if @held.empty?

            held = @held
            @held = []
            @held_since = nil
            [held.join, held.size, @abandoned]
          end
          return unless lines

          write(lines) unless gone
          @lock.synchronize do
            @due -= count
            @arrived.signal if @due.zero? || @abandoned
          end
        end

        # The next job for the Puma thread, on a slot it took; nil when none is
        # left or no slot is free (then the rest wait for the pool's).
        def next_inline
          @lock.synchronize do
            return nil if @pending.empty? || @abandoned
            return spill unless @pool.try_take

            @inline_since = Process.clock_gettime(Process::CLOCK_MONOTONIC)
            job = @pending.shift
            watch unless @pending.empty?
            job
          end
        end

        # Under @lock: the waiting jobs go to the job threads (they may wait
        # there for a slot: still watched). Returns nil.
        def spill
          @pending.each { |job| @pool.submit { @perform.call(*job) } }
          @pending.clear
          watch
          nil
        end

        # Under @lock.
        def watch
          return if @watched

          @watched = true
          @spill.watch(self)
        end

        # The next answer to yield (lines written directly are not), waiting
        # as long as jobs run; nil once all are sent. Checks for a stop at
        # every wake, for a gone client when idle (a write to it fails anyway).
        def next_line
          loop do
            drain if !@drained && @context&.stopping?
            @lock.synchronize do
              raise ClientGone, "stream client went away" if @abandoned && @direct

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
            return if @abandoned

            @abandoned = true
            @arrived.signal
            [!@start.nil?, @slots.dup].tap { @start = nil }
          end
          dropped = slots.count { |_, slot| @running.drop(slot) }
          due = @lock.synchronize { @due }
          return if due.zero?

          not_started = queued ? due : dropped
          @logger.warn("courier-sidecar: stream client went away with #{due} of #{@count} jobs unanswered: " \
                       "#{not_started} not started, #{due - not_started} running (they finish, unanswered)")
        end

        # One line as one chunk of the chunked body, from any thread; false
        # (and the stream abandoned) when the client has gone.
        def write(line)
          @write_lock.synchronize { @socket.write("#{line.bytesize.to_s(16)}\r\n#{line}\r\n") }
          true
        rescue IOError, SystemCallError
          abandon
          false
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
        # would hold each short line up to 200 ms: uncorked once for the whole
        # stream, NODELAY so Nagle does not hold a line either; each line is
        # one write. Puma uncorks at the end of the response anyway.
        def prepare_socket
          @socket.setsockopt(::Socket::IPPROTO_TCP, ::Socket::TCP_NODELAY, 1)
          @socket.setsockopt(::Socket::IPPROTO_TCP, ::Socket::TCP_CORK, 0) if defined?(::Socket::TCP_CORK)
        rescue IOError, SystemCallError
          nil # not TCP (a Unix socket): nothing holds the lines
        end
      end
    end
  end
end
