# frozen_string_literal: true
# What the unchanged Sidekiq API and the app's database say after the demo.
require_relative "../rails_app/config/environment"
require "sidekiq/api"

stats = Sidekiq::Stats.new
puts "Sidekiq::Stats: processed=#{stats.processed} failed=#{stats.failed} " \
     "retry=#{stats.retry_size} dead=#{stats.dead_size} scheduled=#{stats.scheduled_size} enqueued=#{stats.enqueued}"
Sidekiq::ProcessSet.new.each do |p|
  puts "Sidekiq::ProcessSet: #{p.identity} concurrency=#{p['concurrency']} queues=#{p['queues'].inspect} labels=#{p['labels'].inspect}"
end
puts "job_runs rows (written by the jobs themselves):"
JobRun.order(:id).each { |r| puts "  #{r.job_class.ljust(16)} #{r.arg}  middleware=#{r.middleware}" }
puts "widget touches: #{Widget.last&.touches}"
Sidekiq::RetrySet.new.each do |e|
  puts "RetrySet: #{e.klass} retry_count=#{e['retry_count']} error=#{e['error_class']}: #{e['error_message']} next in #{(e.at - Time.now).round}s"
end
Sidekiq::DeadSet.new.each do |e|
  puts "DeadSet: #{e.klass || e.value.inspect} error=#{e['error_class'].inspect} #{e['error_message']}"
end
Event.order(:id).each { |ev| puts "event: #{ev.kind} #{ev.detail}" } if defined?(Event)
