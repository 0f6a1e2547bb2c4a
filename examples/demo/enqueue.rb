# frozen_string_literal: true
# Enqueues one job of every kind from the example Rails app, exactly as the
# app itself would (Sidekiq client, ActiveJob perform_later, perform_in).
require_relative "../rails_app/config/environment"

widget = Widget.create!(name: "demo widget")
puts "enqueued:"
puts "  RecordJob.perform_async             jid=#{RecordJob.perform_async('hello from the demo')}"
puts "  RecordJob.perform_in(3)             jid=#{RecordJob.perform_in(3, 'scheduled 3 s ahead')}"
job = WidgetTouchJob.perform_later(widget, note: "GlobalID argument")
puts "  WidgetTouchJob.perform_later        job_id=#{job.job_id}"
puts "  FailingJob.perform_async           jid=#{FailingJob.perform_async('this job raises; it goes to the retry set')}"
puts "  RetryInJob.perform_async('kill')    jid=#{RetryInJob.perform_async('kill')}"
Sidekiq.redis { |r| r.lpush("queue:default", "this is not JSON") }
puts "  a malformed payload (raw LPUSH)"
100.times { |i| NoopJob.perform_async(i) }
puts "  100 × NoopJob"
