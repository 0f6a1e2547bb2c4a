# frozen_string_literal: true

# Baseline: Puma serving a Rack app that does nothing. What HTTP + Puma +
# Rack env building cost before the sidecar does anything.
#   ruby bare_rack.rb PORT THREADS
require "puma"
require "puma/configuration"
require "puma/launcher"
require "puma/events"

app = ->(_env) { [200, {"Content-Type" => "application/json", "Content-Length" => "15"}, ['{"status":"ok"}']] }
conf = Puma::Configuration.new({config_files: ["-"]}) do |c|
  c.bind "tcp://127.0.0.1:#{ARGV[0]}"
  c.threads Integer(ARGV[1]), Integer(ARGV[1])
  c.log_requests false
  c.app app
end
Puma::Launcher.new(conf, events: Puma::Events.strings).run
