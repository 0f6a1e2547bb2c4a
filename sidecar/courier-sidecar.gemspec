# frozen_string_literal: true

require_relative "lib/courier/sidecar/version"

Gem::Specification.new do |spec|
  spec.name = "courier-sidecar"
  spec.version = Courier::Sidecar::VERSION
  spec.summary = "Executor sidecar for Courier: runs Sidekiq jobs of a Rails app over HTTP"
  spec.description = <<~DESC
    A plain Rack app served by Puma that boots a Rails application once and runs
    each Sidekiq job POSTed to it exactly as Sidekiq's processor would (Rails
    reloader, server middleware, jid, ActiveJob wrapper, lifecycle events).
    Protocol v1 is documented in docs/protocol.md of the Courier repository.
    Verified with Sidekiq 6.4.1 / Rails 6.1 / Puma 5.6 / Rack 2.2 (Ruby 3.1,
    Debian 12) and Sidekiq 7.3.2 / Rails 7.2 / Puma 6.6 / Rack 3.1 (Ruby 3.3,
    Debian 13).
  DESC
  spec.authors = ["Courier contributors"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"

  spec.files = Dir["lib/**/*.rb", "exe/*", "README.md"]
  spec.bindir = "exe"
  spec.executables = ["courier-sidecar"]
  spec.require_paths = ["lib"]

  # What is verified (see the description): Sidekiq 6.4–7.x, Puma 5–6, Rack 2–3.
  spec.add_dependency "puma", ">= 5.6", "< 7"
  spec.add_dependency "rack", ">= 2.2", "< 4"
  spec.add_dependency "sidekiq", ">= 6.4", "< 8"
  spec.add_development_dependency "minitest", ">= 5.14"
  spec.add_development_dependency "rack-test", ">= 1.1"
end
