# frozen_string_literal: true

require "json"
require "net/http"
require "rbconfig"
require "timeout"
require "tmpdir"

module CourierTest
  # The real courier-sidecar executable as a subprocess (its own process
  # group), on a free port, against the suite's Redis and SQLite file.
  module SidecarProcess
    EXE = File.join(CourierTest::SIDECAR, "exe", "courier-sidecar")

    def spawn_sidecar(*flags, env: {})
      port = CourierTest::RedisServer.free_port
      log = File.join(Dir.tmpdir, "courier-sidecar-#{port}.log")
      pid = Process.spawn({"COURIER_SECRET" => CourierTest::SECRET}.merge(env), RbConfig.ruby, EXE,
                          "--app", CourierTest::EXAMPLE_APP, "--port", port.to_s, *flags,
                          out: log, err: [:child, :out], pgroup: true)
      [pid, port, log]
    end

    def wait_healthy(port, pid, log, deadline_s: 60)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + deadline_s
      loop do
        raise "sidecar exited early:\n#{File.read(log)}" if Process.wait(pid, Process::WNOHANG)

        begin
          res = Net::HTTP.get_response(URI("http://127.0.0.1:#{port}/v1/health"))
          return JSON.parse(res.body) if res.code == "200"
        rescue SystemCallError, EOFError, Net::ReadTimeout
          nil
        end
        raise "sidecar not healthy within #{deadline_s}s:\n#{File.read(log)}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.1
      end
    end

    def stop(pid)
      Process.kill("TERM", -pid)
      Timeout.timeout(30) { Process.wait(pid) }
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    rescue Timeout::Error
      Process.kill("KILL", -pid)
      Process.wait(pid)
    end

    def post_signed(port, path, body, read_timeout: 30)
      Net::HTTP.start("127.0.0.1", port, read_timeout: read_timeout) do |http|
        http.post(path, body, "Content-Type" => "application/json", "Courier-Signature" => sign(body))
      end
    end
  end
end
