# frozen_string_literal: true

require_relative "test_helper"
require "sidecar_process"
require "open3"

# The real executable on a real socket: Puma cluster mode (2 workers × 8
# threads, app preloaded), concurrent signed POSTs, no job lost or doubled.
class PumaTest < CourierTest::Case
  include CourierTest::SidecarProcess

  EXE = CourierTest::SidecarProcess::EXE
  JOBS = 500
  CLIENTS = 16

  def test_cluster_mode_runs_every_job_exactly_once
    pid, port, log = spawn_sidecar("--threads", "8", "--workers", "2")
    begin
      health = wait_healthy(port, pid, log)
      assert_equal "ok", health["status"]

      Sidekiq::Client.push_bulk("class" => RecordJob, "args" => Array.new(JOBS) { |i| ["puma-#{i}"] })
      bodies = Sidekiq.redis { |r| r.lrange("queue:default", 0, -1) }
      assert_equal JOBS, bodies.size

      queue = Queue.new
      bodies.each { |b| queue << b }
      codes = Array.new(CLIENTS) do
        Thread.new do
          Net::HTTP.start("127.0.0.1", port, read_timeout: 30) do |http| # keep-alive, like curl
            out = []
            while (body = (queue.pop(true) rescue nil))
              jid = JSON.parse(body)["jid"]
              req = Net::HTTP::Post.new("/v1/jobs", "Content-Type" => "application/json",
                                                    "Courier-Signature" => sign(body), "Courier-Jid" => jid)
              req.body = body
              res = http.request(req)
              warn res.body if res.code != "200"
              out << res.code
            end
            out
          end
        end
      end.flat_map(&:value)

      assert_equal({"200" => JOBS}, codes.tally)
      assert_equal JOBS, JobRun.count
      assert_equal JOBS, JobRun.distinct.count(:jid)
      assert_equal bodies.map { |b| JSON.parse(b)["jid"] }.sort, JobRun.pluck(:jid).sort
      assert_equal JOBS, JobRun.where("middleware LIKE 'default:%'").count
      pids = 20.times.map { JSON.parse(Net::HTTP.get(URI("http://127.0.0.1:#{port}/v1/health")))["pid"] }
      refute_includes pids, pid, "answers come from forked workers"
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
  end

  # The cancel lands in whichever worker Puma picks; the job may run in the
  # other. Lifecycle events fire in each worker: startup and heartbeat at
  # boot, quiet and shutdown when Puma stops.
  def test_cluster_mode_cancels_across_workers_and_fires_lifecycle_events
    events = File.join(Dir.tmpdir, "courier-lifecycle-#{Process.pid}.log")
    File.delete(events) if File.exist?(events)
    pid, port, log = spawn_sidecar("--threads", "2", "--workers", "2", env: {"COURIER_EXAMPLE_LIFECYCLE_LOG" => events})
    begin
      wait_healthy(port, pid, log)
      payload = push(LongJob, 30, "cluster")
      jid = JSON.parse(payload)["jid"]
      job = Thread.new { post_signed(port, "/v1/jobs", payload) }
      cancelled = nil
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 20
      until cancelled || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        res = post_signed(port, "/v1/jobs/cancel", JSON.generate("jid" => jid, "reason" => "cancel"))
        cancelled = res if res.code == "200"
        sleep 0.05
      end
      assert cancelled, "a cancel found the running job"
      res = job.join(10).value
      assert_equal "409", res.code
      assert_equal "Courier::JobCancelled", JSON.parse(res.body)["error_class"]
      refute JobRun.exists?(jid: jid)

      lines = File.readlines(events, chomp: true)
      workers = lines.grep(/\Astartup /).map { |l| l.split.last }
      assert_equal 2, workers.uniq.size, "startup in each worker: #{lines.inspect}"
      refute_includes workers, pid.to_s
      assert_equal 2, lines.grep(/\Aheartbeat /).size
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
    lines = File.readlines(events, chomp: true)
    workers.each do |w|
      assert_equal ["startup #{w}", "heartbeat #{w}", "quiet #{w}", "shutdown #{w}"], lines.select { |l| l.end_with?(" #{w}") && !l.start_with?("beat ") }
    end
  ensure
    File.delete(events) if events && File.exist?(events)
  end

  # Single mode (the default): Puma's TERM handler raises out of its run loop;
  # :quiet and :shutdown still run to their end (the hook takes 1 s), in the
  # one serving process.
  def test_single_mode_fires_lifecycle_events_through_shutdown
    events = File.join(Dir.tmpdir, "courier-lifecycle-single-#{Process.pid}.log")
    File.delete(events) if File.exist?(events)
    pid, port, log = spawn_sidecar("--threads", "2", env: {"COURIER_EXAMPLE_LIFECYCLE_LOG" => events,
                                                            "COURIER_EXAMPLE_SHUTDOWN_SECONDS" => "1"})
    begin
      wait_healthy(port, pid, log)
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
    lines = File.readlines(events, chomp: true).reject { _1.start_with?("beat ") }
    assert_equal ["startup #{pid}", "heartbeat #{pid}", "quiet #{pid}", "shutdown #{pid}"], lines
  ensure
    File.delete(events) if events && File.exist?(events)
  end

  def test_bad_flag_stops_start_up_naming_it
    out, status = Open3.capture2e({"COURIER_SECRET" => "x"}, RbConfig.ruby, EXE, "--app", CourierTest::EXAMPLE_APP, "--threads", "lots")
    assert_equal 64, status.exitstatus
    assert_match(/--threads must be an integer/, out)

    out, status = Open3.capture2e({"COURIER_SECRET" => "x"}, RbConfig.ruby, EXE, "--app", CourierTest::EXAMPLE_APP, "--wat")
    assert_equal 64, status.exitstatus
    assert_match(/--wat/, out)
  end

  # The launcher's settings that need a re-exec: MALLOC_ARENA_MAX=2 unless
  # the environment has one; COURIER_SIDECAR_TUNE=0 leaves it alone, and
  # anything but 0/1 stops start-up. The probe (RUBYOPT -r, loaded in the
  # re-executed process only) prints what that process got and exits;
  # without a re-exec, --help ends the run.
  def test_launcher_tunes_malloc_arenas_unless_told_otherwise
    Dir.mktmpdir do |dir|
      probe = File.join(dir, "probe.rb")
      File.write(probe, 'if ENV["COURIER_SIDECAR_YJIT_TRIED"] then $stdout.syswrite("arenas=#{ENV["MALLOC_ARENA_MAX"].inspect}\n"); exit! 0 end')
      run = lambda do |env|
        Open3.capture2e({"COURIER_SECRET" => "x", "RUBYOPT" => "-r#{probe}", "COURIER_SIDECAR_YJIT_TRIED" => nil}.merge(env),
                        RbConfig.ruby, EXE, "--help")
      end
      out, = run.call("MALLOC_ARENA_MAX" => nil)
      assert_includes out, 'arenas="2"'
      # The environment's own value wins: kept through the YJIT re-exec (Ruby 3.1), or no
      # re-exec at all where nothing else needs one (Ruby 3.3 without YJIT: --help ran).
      out, = run.call("MALLOC_ARENA_MAX" => "4")
      refute_includes out, 'arenas="2"', "the environment's own value wins"
      assert(out.include?('arenas="4"') || out.include?("Usage: courier-sidecar"), out)
      out, = run.call("MALLOC_ARENA_MAX" => nil, "COURIER_SIDECAR_TUNE" => "0", "COURIER_SIDECAR_YJIT" => "1")
      refute_includes out, 'arenas="2"'

      out, status = run.call("COURIER_SIDECAR_TUNE" => "yes")
      assert_equal 64, status.exitstatus
      assert_match(/COURIER_SIDECAR_TUNE must be 0 or 1, got "yes"/, out)
    end
  end

  def test_refuses_to_start_without_a_secret
    env = {"COURIER_SECRET" => nil, "COURIER_SIDECAR_DEV" => nil}
    out, status = Open3.capture2e(env, RbConfig.ruby, EXE, "--app", CourierTest::EXAMPLE_APP, "--port", "1")
    assert_equal 64, status.exitstatus
    assert_match(/no secret: set COURIER_SECRET or --secret-file/, out)
  end

  def test_dev_mode_warns_loudly_and_serves_unsigned
    pid, port, log = spawn_sidecar("--dev", "--threads", "2", env: {"COURIER_SECRET" => nil})
    begin
      wait_healthy(port, pid, log)
      body = push(RecordJob, "dev-mode")
      res = Net::HTTP.post(URI("http://127.0.0.1:#{port}/v1/jobs"), body, "Content-Type" => "application/json")
      assert_equal "200", res.code
      assert JobRun.exists?(arg: "dev-mode")
      assert_match(/DEV MODE: requests are NOT authenticated/, File.read(log))
    ensure
      stop(pid)
      File.delete(log) if File.exist?(log)
    end
  end
end
