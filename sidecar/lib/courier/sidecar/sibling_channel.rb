# frozen_string_literal: true

require "socket"

module Courier
  module Sidecar
    # Cancels reach whichever Puma worker the request lands in; the job may be
    # running in another. Each worker therefore listens on a UNIX socket in a
    # private (0700) directory made by the CLI before forking, and a worker
    # that does not run the jid asks its siblings. Costs nothing per job:
    # only cancels travel here.
    #
    #   request line:  "<reason> <jid>\n"     answer: "1\n" (interrupted) or "0\n"
    class SiblingChannel
      TIMEOUT = 1.0 # seconds per sibling; a stuck worker must not stall the cancel
      LINE = /\A(#{RunningJobs::REASONS.keys.join("|")}) (\S{1,128})\n\z/

      def initialize(dir, running_jobs, logger:)
        @dir = dir
        @running = running_jobs
        @logger = logger
      end

      # In each worker, after fork.
      def start!
        @path = File.join(@dir, "#{Process.pid}.sock")
        File.unlink(@path) if File.exist?(@path)
        @server = UNIXServer.new(@path)
        @thread = Thread.new { serve }
        @thread.name = "courier.siblings"
        self
      end

      def stop!
        @server&.close
        File.unlink(@path) if @path && File.exist?(@path)
      rescue IOError, SystemCallError
        nil
      end

      # True if this worker or a sibling had the job running and interrupted it.
      def cancel(jid, reason)
        return true if @running.cancel(jid, reason)

        siblings.any? { |path| ask(path, jid, reason) }
      end

      private

      def siblings
        Dir.glob(File.join(@dir, "*.sock")).reject { |p| p == @path }
      end

      def ask(path, jid, reason)
        UNIXSocket.open(path) do |sock|
          sock.write("#{reason} #{jid}\n")
          return false unless sock.wait_readable(TIMEOUT)

          sock.gets == "1\n"
        end
      rescue SystemCallError, IOError
        false # a worker that exited (its socket file may linger until cleanup)
      end

      # One failed accept (EMFILE, ECONNABORTED) must not end the channel; only stop! does.
      def serve
        until @server.closed?
          begin
            handle(@server.accept)
          rescue IOError, SystemCallError => e
            break if @server.closed?

            @logger.warn("courier-sidecar: sibling channel accept failed: #{e.class}: #{e.message}")
            sleep 0.1
          end
        end
      end

      def handle(client)
        line = client.wait_readable(TIMEOUT) && client.gets
        m = line && LINE.match(line)
        client.write(m && @running.cancel(m[2], RunningJobs::REASONS.fetch(m[1])) ? "1\n" : "0\n")
      rescue SystemCallError, IOError => e
        @logger.warn("courier-sidecar: sibling cancel request failed: #{e.class}: #{e.message}")
      ensure
        client&.close
      end
    end
  end
end
