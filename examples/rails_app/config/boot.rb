# frozen_string_literal: true

# No Bundler: every gem comes from Debian's packages (ruby-rails, ruby-sidekiq,
# ruby-sqlite3), found by plain RubyGems.
require "rails"
