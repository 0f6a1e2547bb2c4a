# frozen_string_literal: true

require_relative "../../lib/courier_example/ticker"

# The way gems such as sidekiq-cron and sidekiq-scheduler hook in: a poller
# thread started on :startup (in every serving process) that enqueues jobs,
# stopped on :quiet. COURIER_EXAMPLE_LIFECYCLE_LOG names a file that gets one
# line per event ("startup 1234"); COURIER_EXAMPLE_TICK_SECONDS turns the
# poller on; COURIER_EXAMPLE_SHUTDOWN_SECONDS makes the :shutdown hook take
# that long first (a poller draining its work), so tests see it is awaited.
Sidekiq.configure_server do |config|
  log = ENV["COURIER_EXAMPLE_LIFECYCLE_LOG"]
  note = ->(event) { File.open(log, "a") { |f| f.puts("#{event} #{Process.pid}") } if log }
  events = %i[startup quiet shutdown heartbeat]
  events << :beat if Sidekiq::VERSION.to_i >= 7
  events.each { |event| config.on(event) { note.call(event) } unless event == :shutdown }
  config.on(:shutdown) do
    sleep Float(ENV.fetch("COURIER_EXAMPLE_SHUTDOWN_SECONDS", "0"))
    note.call(:shutdown)
  end

  if (seconds = ENV["COURIER_EXAMPLE_TICK_SECONDS"])
    config.on(:startup) { CourierExample::Ticker.start(Float(seconds)) }
    config.on(:quiet) { CourierExample::Ticker.stop }
  end
end
