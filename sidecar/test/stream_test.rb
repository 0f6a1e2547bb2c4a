# frozen_string_literal: true

require_relative "test_helper"
require "sidecar_process"
require "socket"

# POST /v1/jobs/stream: the batch envelope, jobs run side by side on the job
# threads, one NDJSON line per job as it ends, then {"done":true,"count":N}.
# The first tests run in-process (Rack::MockRequest); the rest read a real
# Puma's chunked answer off a raw socket and time each line's arrival.
class StreamTest < CourierTest::Case
  include CourierTest::SidecarProcess

  # Writes a signed stream request on a raw socket and reads the chunked
  # answer incrementally: each line with the time it arrived (seconds after
  # the request was written).
  class RawStream
    attr_reader :status, :headers, :lines

    def initialize(port, body, signature:, path: "/v1/jobs/stream")
      @sock = TCPSocket.new("127.0.0.1", port)
      @buffer = +""
      @text = +""
      @lines = []
      head = +"POST #{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
              "Content-Length: #{body.bytesize}\r\n"
      head << "Courier-Signature: #{signature}\r\n" if signature
      @sock.write(head << "\r\n" << body)
      @t0 = now
    end

    # Puma 6 sends the status and headers with the first line only.
    def read_head(timeout = 30)
      return self if @status

      status_line = crlf_line(timeout)
      @status = status_line.split[1].to_i
      @headers = {}
      while (line = crlf_line(timeout)) != ""
        key, value = line.split(":", 2)
        @headers[key.downcase] = value.strip
      end
      self
    end

    # The next JSON line and its arrival time, or nil at the end of the body.
    def next_line(timeout = 30)
      read_head(timeout)
      while (i = @text.index("\n")).nil?
        return nil if @ended

        read_chunk(timeout)
      end
      text = @text.slice!(0..i)
      return next_line(timeout) if text == "\n" # blank lines are allowed, and mean nothing

      line = [JSON.parse(text), now - @t0]
      @lines << line
      line
    end

    def read_all(timeout = 30)
      nil while next_line(timeout)
      @lines
    end

    def ended_cleanly?
      @ended
    end

    def close
      @sock.close unless @sock.closed?
    end

    private

    def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

    def read_chunk(timeout)
      size = crlf_line(timeout).to_i(16)
      if size.zero?
        crlf_line(timeout)
        @ended = true
      else
        fill(size + 2, timeout)
        @text << @buffer.slice!(0, size)
        @buffer.slice!(0, 2)
      end
    end

    def crlf_line(timeout)
      fill_until("\r\n", timeout)
      @buffer.slice!(0..@buffer.index("\r\n") + 1).chomp("\r\n")
    end

    def fill_until(marker, timeout)
      more(timeout) until @buffer.include?(marker)
    end

    def fill(bytes, timeout)
      more(timeout) while @buffer.bytesize < bytes
    end

    def more(timeout)
      raise "no data from the stream within #{timeout}s" unless @sock.wait_readable(timeout)

      @buffer << @sock.readpartial(65_536)
    end
  end

  # One sidecar for most Puma tests (4 request threads, 4 job threads),
  # started by the first that needs it, stopped when the suite ends.
  @shared = nil
  class << self
    attr_accessor :shared
  end
  Minitest.after_run do
    if (shared = StreamTest.shared)
      pid, _port, log = shared
      Object.new.extend(CourierTest::SidecarProcess).stop(pid)
      File.delete(log) if File.exist?(log)
    end
  end

  def shared_sidecar
    self.class.shared ||= begin
      pid, port, log = spawn_sidecar("--threads", "4", "--job-threads", "4")
      wait_healthy(port, pid, log)
      [pid, port, log]
    end
  end

  def teardown
    @built&.pool&.stop!
    super
  end

  def built(**options)
    @built ||= Courier::Sidecar::Boot.build(self.class.options(**options), logger: LOGGER)
  end

  def app
    built.app
  end

  def stream_body(entries)
    JSON.generate("jobs" => entries)
  end

  # In-process: the Rack answer, and its lines parsed (the body read to its end).
  def stream(entries)
    post_job(stream_body(entries), path: "/v1/jobs/stream")
    last_response.body.each_line.map { |l| JSON.parse(l) }
  end

  def entry(payload, queue = nil)
    queue ? {"payload" => payload, "queue" => queue} : {"payload" => payload}
  end

  def jid_of(payload) = JSON.parse(payload)["jid"]

  # Sent, not yet read (see RawStream#read_head).
  def raw_stream(port, entries)
    body = stream_body(entries)
    RawStream.new(port, body, signature: sign(body))
  end

  def error_handler_calls
    calls = []
    handlers = Sidekiq.respond_to?(:default_configuration) ? Sidekiq.default_configuration.error_handlers : Sidekiq.error_handlers
    handler = ->(error, context, *) { calls << [error.class.name, context[:context], context[:job]&.fetch("jid", nil)] }
    handlers << handler
    yield calls
  ensure
    handlers.delete(handler)
  end

  def wait_for(deadline_s = 10)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + deadline_s
    sleep 0.02 until yield || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    yield
  end

  # --- in-process -----------------------------------------------------------

  def test_each_job_gets_its_own_line_then_the_done_line
    ok = push(RecordJob, "streamed")
    active = push(NoopActiveJob, 1)
    failing = push(RetryInJob, "seconds")
    bad_args = JSON.generate("class" => "RecordJob", "args" => "nope", "jid" => "badargs0123456789abcdef0")
    entries = [
      entry(ok, "critical"),
      entry(failing, "default"),
      entry(JSON.generate("class" => "Kernel", "args" => [], "jid" => "kernel0123456789abcdef01")),
      entry("{oops"),
      {"nope" => 1},
      entry(bad_args),
      entry(push(RecordJob, "x" * 1_100_000)),
      entry(active)
    ]
    lines = error_handler_calls do |calls|
      result = stream(entries)
      assert_includes calls, ["RetryInJob::Failed", "Job raised exception", jid_of(failing)], "the app's error handlers hear of the failure"
      result
    end

    assert_equal 200, last_response.status
    assert_equal "application/x-ndjson", last_response.headers["Content-Type"]
    assert_equal({"done" => true, "count" => entries.size}, lines.last)
    by_index = lines[0..-2].to_h { |l| [l["index"], l] }
    assert_equal (0...entries.size).to_a, by_index.keys.sort, "one line per job"

    assert_equal({"index" => 0, "jid" => jid_of(ok), "code" => 200, "status" => "ok"}, by_index[0])
    assert_equal [422, "failed", "RetryInJob::Failed", 10, nil], by_index[1].values_at("code", "status", "error_class", "retry_in", "retry_action")
    assert_match(/retry_in_job\.rb/, by_index[1]["backtrace"].first)
    assert_equal [422, "Courier::NotAJobClass", "kernel0123456789abcdef01"], by_index[2].values_at("code", "error_class", "jid")
    assert_equal [400, "refused", nil], by_index[3].values_at("code", "status", "jid")
    assert_match(/malformed JSON/, by_index[3]["reason"])
    assert_equal [400, "refused"], by_index[4].values_at("code", "status")
    assert_equal [400, "badargs0123456789abcdef0"], by_index[5].values_at("code", "jid"), "a refused job's jid when it has one"
    assert_equal [413, "refused"], by_index[6].values_at("code", "status")
    assert_equal 200, by_index[7]["code"], "ActiveJob through its wrapper"
    refute by_index.values.any? { |l| l.key?("started") }, "only jobs that never started say so"

    assert_equal "critical:#{jid_of(ok)}", JobRun.find_by!(jid: jid_of(ok)).middleware, "server middleware, with the entry's queue"
    assert_equal 1, JobRun.count, "the refused and oversized jobs did not run"
  end

  def test_refused_lines_come_before_any_job_ends
    noop = push(NoopJob)
    lines = stream([entry(noop), entry("[1]"), entry(JSON.generate("class" => "RecordJob", "args" => {}))])
    assert_equal [[1, 400], [2, 400], [0, 200]], lines[0..2].map { |l| l.values_at("index", "code") }
  end

  def test_envelope_refusals_run_nothing
    valid = entry(push(RecordJob, "never"))
    middleware_before = middleware_count
    post_job("nope", path: "/v1/jobs/stream")
    assert_equal 400, last_response.status
    post_job(JSON.generate("jobs" => {"a" => valid}), path: "/v1/jobs/stream")
    assert_equal [400, "refused"], [last_response.status, answer["status"]]
    post_job(stream_body([1]), path: "/v1/jobs/stream")
    assert_equal 200, last_response.status, "an entry that is not an object is that job's refusal"
    assert_equal 400, JSON.parse(last_response.body.lines.first)["code"]
    post_job(stream_body(Array.new(101) { valid }), path: "/v1/jobs/stream")
    assert_equal 413, last_response.status
    assert_match(/stream has 101 jobs, over the limit of 100/, answer["reason"])
    post_job(stream_body([valid]), path: "/v1/jobs/stream", signature: nil)
    assert_equal 401, last_response.status
    post_job(stream_body([valid]), path: "/v1/jobs/stream", signature: sign(stream_body([valid]), secret: "wrong"))
    assert_equal 401, last_response.status
    post_job(stream_body([valid]), path: "/v1/jobs/stream", signature: sign(stream_body([valid]), time: Time.now.to_i - 301))
    assert_equal 401, last_response.status
    get "/v1/jobs/stream"
    assert_equal 405, last_response.status
    assert_equal 0, JobRun.count
    assert_equal middleware_before, middleware_count, "no middleware ran"
  end

  def test_stream_body_limit_is_the_batch_one
    built(max_batch_body: 2_000, max_stream_jobs: 3)
    body = stream_body([entry(push(RecordJob, "y" * 3_000))])
    post_job(body, path: "/v1/jobs/stream")
    assert_equal 413, last_response.status
    post_job(stream_body(Array.new(4) { entry("{}") }), path: "/v1/jobs/stream")
    assert_equal 413, last_response.status
    assert_equal 0, JobRun.count
  end

  def test_health_advertises_stream_and_capacity
    get "/v1/health"
    assert_equal 1, answer["protocol"]
    assert_equal %w[batch cancel stream], answer["features"]
    assert_equal 5, answer["capacity"], "job threads (default: Puma threads) × 1 worker"
    assert_equal 100, answer["max_stream_jobs"]
    assert_equal 5, answer["request_threads"]

    health = lambda do |**options|
      JSON.parse(Rack::MockRequest.new(Courier::Sidecar::Boot.build_app(self.class.options(**options), logger: LOGGER)).get("/v1/health").body)
    end
    assert_equal [6, 40, 10], health.call(job_threads: 3, workers: 2, max_batch_jobs: 40).values_at("capacity", "max_stream_jobs", "request_threads")
    assert_equal 2, health.call(job_threads: 3, workers: 2, max_batch_jobs: 40)["processes"]
    assert_equal 7, health.call(max_stream_jobs: 7)["max_stream_jobs"]
  end

  def test_an_executor_without_streams_answers_404
    app.stream = nil
    post_job(stream_body([]), path: "/v1/jobs/stream")
    assert_equal 404, last_response.status
    get "/v1/health"
    refute_includes answer["features"], "stream"
  end

  def test_an_empty_stream_is_just_the_done_line
    assert_equal [{"done" => true, "count" => 0}], stream([])
  end

  # One job thread: the second job waits; a cancel of it answers at once
  # and it never starts. Then the running one is interrupted as usual.
  def test_a_cancelled_queued_job_never_starts
    built(job_threads: 1)
    blocker = push(LongJob, 30, "blocker")
    queued = push(RecordJob, "queued")
    body = stream_body([entry(blocker), entry(queued)])
    env = Rack::MockRequest.env_for("/v1/jobs/stream", method: "POST", input: body, "HTTP_COURIER_SIGNATURE" => sign(body))
    status, headers, run = app.call(env)
    assert_equal [200, "application/x-ndjson"], [status, headers["Content-Type"]]
    lines = Queue.new
    reader = Thread.new do
      run.each { |l| lines << JSON.parse(l) }
    ensure
      run.close
    end
    assert wait_for { built.running.size == 1 }, "the blocker runs"
    assert_equal 1, built.running.queued_size

    post_job(JSON.generate("jid" => jid_of(queued), "reason" => "timeout"), path: "/v1/jobs/cancel")
    assert_equal [200, "cancelled"], [last_response.status, answer["status"]]
    line = lines.pop
    assert_equal [1, jid_of(queued), 409, "interrupted", "timeout", "Courier::JobTimeout", false, []],
                 line.values_at("index", "jid", "code", "status", "reason", "error_class", "started", "backtrace")
    assert_match(/before it started/, line["error_message"])
    assert_equal 0, built.running.queued_size
    post_job(JSON.generate("jid" => jid_of(queued), "reason" => "timeout"), path: "/v1/jobs/cancel")
    assert_equal 404, last_response.status, "answered once"

    post_job(JSON.generate("jid" => jid_of(blocker), "reason" => "cancel"), path: "/v1/jobs/cancel")
    assert_equal 200, last_response.status
    line = lines.pop
    assert_equal [0, 409, "cancel", "Courier::JobCancelled"], line.values_at("index", "code", "reason", "error_class")
    refute line.key?("started")
    assert_equal({"done" => true, "count" => 2}, lines.pop)
    reader.join(5)
    refute JobRun.exists?(jid: jid_of(queued)), "the cancelled queued job never ran"
    assert Event.exists?(kind: "ensure", jid: jid_of(blocker))
  end

  # The process begins to stop: jobs not yet started are answered 503
  # (executor unavailable: requeued, no retry used); running ones finish.
  def test_jobs_not_started_when_the_process_stops_are_answered_503
    built(job_threads: 1)
    slow = push(SlowJob, 0.6, "running")
    queued = push(RecordJob, "not started")
    body = stream_body([entry(slow), entry(queued)])
    _status, _headers, run = app.call(Rack::MockRequest.env_for("/v1/jobs/stream", method: "POST", input: body,
                                                                                   "HTTP_COURIER_SIGNATURE" => sign(body)))
    lines = []
    reader = Thread.new { run.each { |l| lines << JSON.parse(l) } }
    assert wait_for { built.running.size == 1 }
    # What Lifecycle#stopping? reads once Puma begins to stop.
    built.lifecycle.instance_variable_set(:@stopping, true)
    reader.join(5)
    run.close
    assert_equal [[1, 503, "unavailable", false], [0, 200, "ok", nil]], lines[0..1].map { |l| l.values_at("index", "code", "status", "started") }
    assert_equal({"done" => true, "count" => 2}, lines[2])
    assert JobRun.exists?(jid: jid_of(slow))
    refute JobRun.exists?(jid: jid_of(queued))
  end

  # --- a real Puma, raw socket ---------------------------------------------------

  def test_a_slow_job_does_not_hold_back_the_quick_ones
    _pid, port, = shared_sidecar
    slow = push(SlowJob, 1.5, "slow")
    quick = Array.new(10) { |i| push(RecordJob, "quick-#{i}") }
    s = raw_stream(port, [entry(slow)] + quick.map { |q| entry(q) } + [entry("{oops")]).read_head
    assert_equal 200, s.status
    assert_equal "application/x-ndjson", s.headers["content-type"]
    assert_equal "chunked", s.headers["transfer-encoding"]
    lines = s.read_all
    assert s.ended_cleanly?, "the chunked body ends with its last chunk"
    s.close

    done, done_at = lines.last
    assert_equal({"done" => true, "count" => 12}, done)
    refused, refused_at = lines.first
    assert_equal [11, 400], refused.values_at("index", "code"), "the malformed entry's line first"
    assert_operator refused_at, :<, 0.5
    jobs = lines[1..-2]
    slow_line, slow_at = jobs.find { |l, _| l["index"].zero? }
    quick_at = jobs.reject { |l, _| l["index"].zero? }.map(&:last)
    assert_equal 200, slow_line["code"]
    assert_equal 10, quick_at.size
    assert_equal jobs.last.first, slow_line, "the slow job's line comes last (finish order, not request order)"
    assert_operator quick_at.max, :<, 0.9, "every quick line arrived well before the slow one: #{quick_at.map { |t| t.round(3) }}"
    assert_operator slow_at, :>=, 1.45
    assert_operator done_at - slow_at, :<, 0.2
    if ENV["COURIER_TEST_TIMINGS"]
      warn format("stream timings: refused line %.3f s, quick lines %.3f..%.3f s, slow line %.3f s, done %.3f s",
                  refused_at, quick_at.min, quick_at.max, slow_at, done_at)
    end
    assert_equal 11, JobRun.count
  end

  # Quick jobs run one after another on the stream's own Puma thread (a
  # class is quick while its runs average under --inline-below-ms). One that turns slow
  # there holds back neither the jobs waiting behind it (after
  # --spill-after-ms they go to the job threads) nor the held lines of the
  # quick ones it followed.
  def test_a_quick_class_turned_slow_holds_back_neither_the_jobs_behind_nor_the_lines_before
    # --inline-below-ms 200: CountJob(0) counts as quick however loaded the machine is.
    pid, port, log = spawn_sidecar("--threads", "2", "--job-threads", "4", "--spill-after-ms", "20", "--inline-below-ms", "200")
    begin
      wait_healthy(port, pid, log)
      warm = raw_stream(port, Array.new(20) { |i| entry(push(CountJob, 0, "warm-#{i}")) }).read_all
      assert_equal({"done" => true, "count" => 20}, warm.last.first)

      behind = raw_stream(port, [entry(push(CountJob, 1.0, "turned slow"))] +
                                Array.new(4) { |i| entry(push(CountJob, 0, "behind-#{i}")) }).read_all
      quick_at = behind[0..-2].reject { |l, _| l["index"].zero? }.map(&:last)
      slow_line, slow_at = behind.find { |l, _| l["index"]&.zero? }
      assert_equal [200, 4], [slow_line["code"], quick_at.size]
      assert_operator quick_at.max, :<, 0.5, "the jobs behind the slow one went to the job threads: #{quick_at.map { |t| t.round(3) }}"
      assert_operator quick_at.min, :>=, 0.018, "they waited --spill-after-ms behind it on the stream's thread first"
      assert_operator slow_at, :>=, 0.95

      before = raw_stream(port, [entry(push(CountJob, 0, "first")), entry(push(CountJob, 1.0, "then slow"))]).read_all
      first_line, first_at = before.first
      assert_equal [0, 200], first_line.values_at("index", "code")
      assert_operator first_at, :<, 0.5, "the quick job's held line went out while the slow one ran"
      assert_equal({"done" => true, "count" => 2}, before.last.first)
      warn format("inline timings: behind %.3f s, held line %.3f s", quick_at.max, first_at) if ENV["COURIER_TEST_TIMINGS"]
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
  end

  def test_jobs_of_one_stream_run_concurrently
    _pid, port, = shared_sidecar
    payloads = Array.new(4) { |i| push(SlowJob, 0.5, "side-by-side-#{i}") }
    lines = raw_stream(port, payloads.map { |p| entry(p) }).read_all
    done_at = lines.last.last
    assert_equal({"done" => true, "count" => 4}, lines.last.first)
    assert lines[0..-2].all? { |l, at| l["code"] == 200 && at >= 0.45 }
    assert_operator done_at, :<, 1.2, "4 × 0.5 s on 4 job threads take ≈0.5 s, not 2 s (took #{done_at.round(3)} s)"
    warn format("stream timings: 4 × 0.5 s jobs done in %.3f s", done_at) if ENV["COURIER_TEST_TIMINGS"]
  end

  # Two streams at once share the process's 4 job threads: 8 × 0.5 s jobs
  # take two rounds (≈1 s), every job once.
  def test_streams_share_the_job_threads
    _pid, port, = shared_sidecar
    streams = Array.new(2) do |n|
      raw_stream(port, Array.new(4) { |i| entry(push(SlowJob, 0.5, "stream-#{n}-#{i}")) })
    end
    done = streams.map { |s| Thread.new { s.read_all.last } }.map(&:value)
    assert(done.all? { |line, _| line == {"done" => true, "count" => 4} })
    slowest = done.map(&:last).max
    assert_operator slowest, :>=, 0.95, "8 jobs on 4 shared threads need two rounds"
    assert_operator slowest, :<, 1.8
    assert_equal 8, JobRun.count
  end

  def test_a_cancel_interrupts_only_its_job_in_the_stream
    _pid, port, = shared_sidecar
    target = push(LongJob, 30, "target")
    other = push(LongJob, 1.0, "other")
    quick = push(RecordJob, "quick")
    s = raw_stream(port, [entry(target), entry(other), entry(quick)])
    first, = s.next_line
    assert_equal jid_of(quick), first["jid"]

    res = post_signed(port, "/v1/jobs/cancel", JSON.generate("jid" => jid_of(target), "reason" => "cancel"))
    assert_equal "200", res.code
    line, = s.next_line
    assert_equal [0, jid_of(target), 409, "interrupted", "cancel", "Courier::JobCancelled"],
                 line.values_at("index", "jid", "code", "status", "reason", "error_class")
    assert line["backtrace"].any? { |l| l.include?("long_job.rb") }
    line, = s.next_line
    assert_equal [1, 200], line.values_at("index", "code"), "the other long job ran to its end"
    assert_equal({"done" => true, "count" => 3}, s.next_line.first)
    s.close
    assert JobRun.exists?(jid: jid_of(other))
    refute JobRun.exists?(jid: jid_of(target))
    assert Event.exists?(kind: "ensure", jid: jid_of(target))
  end

  def test_signatures_are_enforced_on_the_socket
    _pid, port, = shared_sidecar
    body = stream_body([entry(push(RecordJob, "unsigned"))])
    [nil, sign(body, secret: "wrong")].each do |signature|
      s = RawStream.new(port, body, signature: signature).read_head
      assert_equal 401, s.status
      assert_match %r{application/json}, s.headers["content-type"]
      s.close
    end
    assert_equal 0, JobRun.count
  end

  # One job thread: the client leaves while the first job runs. That job
  # finishes; the queued ones never start; the worker keeps serving.
  def test_a_client_that_leaves_mid_stream
    pid, port, log = spawn_sidecar("--threads", "2", "--job-threads", "1")
    begin
      health = wait_healthy(port, pid, log)
      running = push(SlowJob, 1.0, "running")
      queued = Array.new(3) { |i| push(RecordJob, "queued-#{i}") }
      s = raw_stream(port, [entry(running)] + queued.map { |q| entry(q) })
      sleep 0.3 # the first job is running (Puma 6 would send even the headers only with its line)
      s.close

      assert wait_for(5) { JobRun.exists?(jid: jid_of(running)) }, "the running job finished"
      sleep 0.5 # a queued job would have run by now
      assert_equal 1, JobRun.count, "no job of the abandoned stream started after the client left"

      after = wait_healthy(port, pid, log)
      assert_equal health["pid"], after["pid"], "the same serving process"
      later = push(RecordJob, "later")
      lines = raw_stream(port, [entry(later)]).read_all
      assert_equal [200, {"done" => true, "count" => 1}], [lines.first.first["code"], lines.last.first]
      assert_equal "200", post_signed(port, "/v1/jobs", push(RecordJob, "plain")).code
      text = File.read(log)
      assert_match(/stream client went away with 4 of 4 jobs unanswered: 3 not started, 1 running/, text)
      refute_match(/internal error|Error:|Exception/, text.lines.grep_v(/WARN|INFO/).join)
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
  end

  # SIGTERM while a stream runs: its queued jobs are answered 503 at once
  # (the dispatcher requeues them, no retry used), the running one
  # finishes and is answered, then the process exits.
  def test_a_stopping_sidecar_answers_queued_jobs_503_and_finishes_the_running_one
    pid, port, log = spawn_sidecar("--threads", "2", "--job-threads", "1")
    begin
      wait_healthy(port, pid, log)
      running = push(SlowJob, 1.0, "running")
      queued = Array.new(2) { |i| push(RecordJob, "queued-#{i}") }
      s = raw_stream(port, [entry(running)] + queued.map { |q| entry(q) })
      sleep 0.3
      Process.kill("TERM", pid)
      lines = s.read_all.map(&:first)
      s.close
      assert_equal [[1, 503, "unavailable", false], [2, 503, "unavailable", false]],
                   lines[0..1].map { |l| l.values_at("index", "code", "status", "started") }.sort
      assert_equal [0, 200], lines[2].values_at("index", "code")
      assert_equal({"done" => true, "count" => 3}, lines[3])
      assert Timeout.timeout(20) { Process.wait(pid) }, "the sidecar exits once its stream has ended"
      assert_equal 1, JobRun.count
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
  end

  # Cluster mode: capacity counts every worker's job threads; a cancel of a
  # queued job reaches the worker whose stream holds it.
  def test_cluster_mode_capacity_and_cancel_of_a_queued_job
    pid, port, log = spawn_sidecar("--threads", "2", "--workers", "2", "--job-threads", "1")
    begin
      health = wait_healthy(port, pid, log)
      assert_equal [2, 4, 100], health.values_at("capacity", "request_threads", "max_stream_jobs")
      assert_includes health["features"], "stream"
      blocker = push(LongJob, 30, "blocker")
      queued = push(RecordJob, "queued")
      s = raw_stream(port, [entry(blocker), entry(queued)])
      cancelled = false
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 20
      until cancelled || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        res = post_signed(port, "/v1/jobs/cancel", JSON.generate("jid" => jid_of(queued), "reason" => "cancel"))
        cancelled = res.code == "200"
        sleep 0.05 unless cancelled
      end
      assert cancelled, "a cancel found the queued job"
      line, = s.next_line
      assert_equal [1, 409, "cancel", false], line.values_at("index", "code", "reason", "started")
      res = post_signed(port, "/v1/jobs/cancel", JSON.generate("jid" => jid_of(blocker), "reason" => "shutdown"))
      assert_equal "200", res.code
      line, = s.next_line
      assert_equal [0, 409, "shutdown", "Sidekiq::Shutdown"], line.values_at("index", "code", "reason", "error_class")
      assert_equal({"done" => true, "count" => 2}, s.next_line.first)
      s.close
      refute JobRun.exists?(jid: jid_of(queued))
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
  end
end
