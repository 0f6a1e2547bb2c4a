# frozen_string_literal: true

require_relative "test_helper"
require "open3"

class ResolverTest < CourierTest::Case
  def resolver
    Courier::Sidecar::JobResolver.new(autoload_roots: [File.join(CourierTest::EXAMPLE_APP, "app/jobs")])
  end

  def test_job_classes
    assert_equal RecordJob, resolver.resolve("RecordJob")
    assert_equal SlowJob, resolver.resolve("::SlowJob")
    wrapper = ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper
    assert_equal wrapper, resolver.resolve("ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper")
    assert_equal wrapper, resolver.resolve("Sidekiq::ActiveJob::Wrapper")
  end

  def test_refusals
    %w[Kernel File Object Widget NoopActiveJob Sidekiq::Worker Foo::Bar RecordJob::Kernel].each do |name|
      assert_raises(Courier::Sidecar::JobResolver::Refused, name) { resolver.resolve(name) }
    end
  end

  # In a lazily loaded (eager_load = false) app, a job class may be loaded on
  # demand from app/jobs, but no other constant is ever autoloaded.
  def test_autoload_only_from_job_directories
    script = <<~RUBY
      $LOAD_PATH.unshift(#{File.join(CourierTest::SIDECAR, "lib").inspect})
      require "courier/sidecar"
      require "rack/mock"
      Courier::Sidecar::Boot.rails_app(#{CourierTest::EXAMPLE_APP.inspect}, threads: 2)
      opts = Courier::Sidecar::Options.new({}); opts.dev = true
      app = Courier::Sidecar::Boot.build_app(opts, logger: Logger.new(File::NULL))
      raise "RecordJob preloaded" unless Object.autoload?(:RecordJob)
      raise "Widget preloaded" unless Object.autoload?(:Widget)
      run = ->(klass) { app.call(Rack::MockRequest.env_for("/v1/jobs", method: "POST", input: JSON.generate("class" => klass, "args" => [], "jid" => "j")))[0] }
      puts "widget=\#{run.("Widget")} widget_still_unloaded=\#{!!Object.autoload?(:Widget)}"
      puts "noop=\#{run.("NoopJob")}"
    RUBY
    env = {"EAGER_LOAD" => "0", "RAILS_ENV" => "development"}
    out, err, status = Open3.capture3(env, RbConfig.ruby, "-e", script)
    assert status.success?, err
    assert_includes out, "widget=400 widget_still_unloaded=true"
    assert_includes out, "noop=200"
  end
end
