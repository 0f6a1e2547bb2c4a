# frozen_string_literal: true

require "socket"
require "tmpdir"

module CourierTest
  # A throwaway redis-server on a free 127.0.0.1 port, no persistence.
  class RedisServer
    attr_reader :url, :port

    def self.free_port
      server = TCPServer.new("127.0.0.1", 0)
      server.addr[1]
    ensure
      server&.close
    end

    def start(deadline_s: 10)
      @dir = Dir.mktmpdir("courier-redis")
      @port = self.class.free_port
      @pid = Process.spawn("redis-server", "--port", @port.to_s, "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", @dir, out: File::NULL, err: File::NULL)
      @url = "redis://127.0.0.1:#{@port}/0"
      wait_until_ready(deadline_s)
      self
    end

    def stop
      return unless @pid

      Process.kill("TERM", @pid)
      Process.wait(@pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    ensure
      @pid = nil
      FileUtils.rm_rf(@dir) if @dir
    end

    private

    def wait_until_ready(deadline_s)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + deadline_s
      loop do
        begin
          s = TCPSocket.new("127.0.0.1", @port)
          s.write("PING\r\n")
          return if s.gets&.start_with?("+PONG")
        rescue SystemCallError
          nil
        ensure
          s&.close
        end
        raise "redis-server on port #{@port} not ready within #{deadline_s}s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        sleep 0.02
      end
    end
  end
end
