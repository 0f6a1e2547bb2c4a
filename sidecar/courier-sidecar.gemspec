# frozen_string_literal: true

require_relative "lib/courier/sidecar/version"

Gem::Specification.new do |spec|
  spec.name = "courier-sidecar"
  spec.version = Courier::Sidecar::VERSION
  spec.summary = "Executor sidecar for Courier: runs Sidekiq jobs of a Rails app over HTTP"
  spec.description = <<~DESC
    A plain Rack app served by Puma that boots a Rails application once and runs
    each Sidekiq job POSTed to it exactly as Sidekiq 6.4.1's processor would
    (Rails reloader, server middleware, jid, ActiveJob wrapper). Protocol v1 is
    documented in docs/protocol.md of the Courier repository.
  DESC
  spec.authors = ["Courier contributors"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"

  spec.files = Dir["lib/**/*.rb", "exe/*"]
  spec.bindir = "exe"
  spec.executables = ["courier-sidecar"]
  spec.require_paths = ["lib"]

  # Versions are those Debian 12 ships; nothing is downloaded.
  spec.add_dependency "puma", ">= 5.6", "< 7"
  spec.add_dependency "rack", ">= 2.2", "< 4"
  spec.add_dependency "sidekiq", ">= 6.4", "< 7"
  spec.add_development_dependency "minitest", ">= 5.14"
  spec.add_development_dependency "rack-test", ">= 1.1"
end
