# frozen_string_literal: true

# The summary: what the unchanged Sidekiq API and the app's database say.
require_relative "../rails_app/config/environment"
require "sidekiq/api"

stats = Sidekiq::Stats.new
puts "  Sidekiq::Stats   processed=#{stats.processed} failed=#{stats.failed} retry=#{stats.retry_size} " \
     "dead=#{stats.dead_size} scheduled=#{stats.scheduled_size} enqueued=#{stats.enqueued}"
Sidekiq::ProcessSet.new.each do |p|
  puts "  ProcessSet       #{p.identity} concurrency=#{p["concurrency"]} busy=#{p["busy"]} queues=#{p["queues"].inspect}"
end
puts "  database         #{JobRun.count} job_runs rows, widget touches #{Widget.sum(:touches)}, " \
     "#{Event.where(kind: "death").count} death-handler events"
Sidekiq::RetrySet.new.group_by { _1["error_class"] }.each do |error, entries|
  puts "  RetrySet         #{entries.size} × #{error} (#{entries.first.klass}), next try in ≈ #{(entries.map(&:at).min - Time.now).round} s"
end
Sidekiq::DeadSet.new.group_by { _1["error_class"] || "not JSON" }.each do |error, entries|
  puts "  DeadSet          #{entries.size} × #{error} (#{entries.first.klass || entries.first.value.inspect})"
end
