# frozen_string_literal: true

# The app's web process: the Sidekiq Web UI at /sidekiq, POST /enqueue (a mix
# of jobs through the app's own client), GET /stats and GET /up
# (lib/courier_example/web.rb). Run with `bundle exec puma -b tcp://0.0.0.0:3000`.
require_relative "config/environment"
require Rails.root.join("lib", "courier_example", "web").to_s

run CourierExample::Web.app
