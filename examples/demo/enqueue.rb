# frozen_string_literal: true

# Enqueues a realistic mix from the example Rails app, exactly as the app
# itself would (Sidekiq client, push_bulk, ActiveJob perform_later,
# perform_in), and prints how many jobs will run: DEMO_JOBS sets the size.
require_relative "../rails_app/config/environment"

n = Integer(ENV.fetch("DEMO_JOBS", "2000"))
widgets = Array.new(5) { |i| Widget.create!(name: "demo widget #{i}") }
counts = Hash.new(0)
add = ->(kind, k = 1) { counts[kind] += k }

Sidekiq::Client.push_bulk("class" => NoopJob, "args" => Array.new(n * 6 / 10) { |i| [i] })
add.call("NoopJob (push_bulk)", n * 6 / 10)
(n / 10).times { |i| RecordJob.perform_async("demo #{i}") }
add.call("RecordJob", n / 10)
(n / 10).times { |i| WidgetTouchJob.perform_later(widgets[i % widgets.size], note: "demo #{i}") }
add.call("WidgetTouchJob (ActiveJob, GlobalID)", n / 10)
(n / 20).times { |i| SlowJob.perform_async(0.05, "slow #{i}") }
add.call("SlowJob (50 ms)", n / 20)
(n / 20).times { |i| RecordJob.perform_in(2 + (i % 5), "scheduled #{i}") }
add.call("RecordJob.perform_in(2–6 s)", n / 20)
(n / 100).times { |i| RetryingActiveJob.perform_later(i.even? ? "ok" : "discard") }
add.call("RetryingActiveJob (after_perform / discard_on)", n / 100)
5.times { |i| FailingJob.perform_async("demo failure #{i}: goes to the retry set") }
add.call("FailingJob (raises → RetrySet)", 5)
2.times { RetryInJob.perform_async("kill") }
add.call("RetryInJob(:kill) (→ DeadSet, death handler)", 2)
Sidekiq::Client.push("class" => "DeployedLaterJob", "args" => [])
add.call("an undefined class (NameError → RetrySet)", 1)
Sidekiq.redis { |r| r.lpush("queue:default", "this is not JSON") }
counts.each { |kind, k| puts format("  %6d × %s", k, kind) }
puts "  1 malformed payload (raw LPUSH → DeadSet)"
File.write(ENV.fetch("DEMO_EXPECTED"), (counts.values.sum + 1).to_s) if ENV["DEMO_EXPECTED"]
