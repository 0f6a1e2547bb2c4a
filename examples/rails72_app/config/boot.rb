# frozen_string_literal: true

# Every gem comes from Gemfile.lock, as in any Bundler app.
ENV["BUNDLE_GEMFILE"] ||= File.expand_path("../Gemfile", __dir__)
require "bundler/setup"
