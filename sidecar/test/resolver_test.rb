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

  # What Sidekiq's processor would raise, without running or loading anything:
  # NameError for what is not defined, Courier::NotAJobClass for constants
  # that are not job classes.
  def test_unresolvable_names_carry_the_error_to_report
    {
      "Kernel" => [Courier::NotAJobClass, /Kernel is not a job class/],
      "Widget" => [Courier::NotAJobClass, /Widget is not a job class/],
      "NoopActiveJob" => [Courier::NotAJobClass, /not a job class/],
      "Sidekiq::Worker" => [Courier::NotAJobClass, /not a job class/],
      "RecordJob::Kernel" => [NameError, /\Auninitialized constant RecordJob::Kernel\z/],
      "Foo::Bar" => [NameError, /\Auninitialized constant Foo\z/],
      "DeployedLaterJob" => [NameError, /\Auninitialized constant DeployedLaterJob\z/],
      "bad name" => [NameError, /\Awrong constant name bad name\z/]
    }.each do |name, (klass, message)|
      e = assert_raises(Courier::Sidecar::JobResolver::Unresolvable, name) { resolver.resolve(name) }
      assert_instance_of klass, e.error, name
      assert_match message, e.error.message, name
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
    assert_includes out, "widget=422 widget_still_unloaded=true"
    assert_includes out, "noop=200"
  end
end
