# frozen_string_literal: true

require_relative "test_helper"
require "stringio"

# The job's tenant in the app's own log lines: Sidekiq.logger's context
# ("… tenant=acme INFO: …") and a Rails.logger tag ("[tenant=acme] …"), from
# Courier-Tenant, a batch/stream entry's "tenant", the payload's "tenant", or
# its first tag. LogJob logs one line through each logger.
class LogContextTest < CourierTest::Case
  def teardown
    @built&.pool&.stop!
    super
  end

  # Sidekiq.logger and Rails.logger write to one StringIO while the block
  # runs, as an app's are usually set up: Sidekiq's Pretty format, and Rails'
  # TaggedLogging (wrapped in a BroadcastLogger on Rails 7.1+, as Rails does).
  def with_logs(tagged: true)
    io = StringIO.new
    sidekiq = Sidekiq::Logger.new(io, level: Logger::INFO)
    sidekiq.formatter = Sidekiq::Logger::Formatters::Pretty.new
    rails = ActiveSupport::Logger.new(io, level: Logger::INFO)
    rails = ActiveSupport::TaggedLogging.new(rails) if tagged
    rails = ActiveSupport::BroadcastLogger.new(rails) if defined?(ActiveSupport::BroadcastLogger)
    sidekiq_was = Sidekiq.logger
    rails_was = Rails.logger
    self.sidekiq_logger = sidekiq
    Rails.logger = rails
    yield io
  ensure
    self.sidekiq_logger = sidekiq_was
    Rails.logger = rails_was
  end

  def sidekiq_logger=(logger)
    Sidekiq.respond_to?(:default_configuration) ? Sidekiq.default_configuration.logger = logger : Sidekiq.logger = logger
  end

  # The Sidekiq.logger line and the Rails.logger line of the job whose note is `note`.
  def lines_of(io, note)
    lines = io.string.lines.map(&:chomp)
    [lines.find { |l| l.end_with?("INFO: log job says #{note}") },
     lines.find { |l| l.end_with?("log job says #{note} to rails") }]
  end

  def batch(entries, path: "/v1/jobs/batch")
    post_job(JSON.generate("jobs" => entries), path: path)
  end

  def built
    @built ||= Courier::Sidecar::Boot.build(self.class.options(job_threads: 1), logger: LOGGER)
  end

  def test_courier_tenant_header_is_in_both_loggers_lines
    payload = push(LogJob, "hello")
    jid = JSON.parse(payload)["jid"]
    with_logs do |io|
      assert_equal 200, post_job(payload, headers: {"Courier-Tenant" => "acme"}).status
      sidekiq, rails = lines_of(io, "hello")
      assert_match(/ class=LogJob jid=#{jid} tenant=acme INFO: log job says hello\z/, sidekiq)
      assert_equal "[tenant=acme] log job says hello to rails", rails
    end
  end

  def test_the_payload_tenant_then_its_first_tag_and_the_header_wins
    tagged = LogJob.set(tags: %w[globex blue]).perform_async("tags")
    with_logs do |io|
      post_job(with_fields(push(LogJob, "field"), "tenant" => "initech", "tags" => ["ignored"]))
      post_job(queued_payload(tagged))
      post_job(with_fields(push(LogJob, "both"), "tenant" => "initech"), headers: {"Courier-Tenant" => "acme"})
      post_job(with_fields(push(LogJob, "blank"), "tenant" => ""), headers: {"Courier-Tenant" => ""})

      assert_includes lines_of(io, "field")[0], " tenant=initech INFO:"
      assert_equal "[tenant=initech] log job says field to rails", lines_of(io, "field")[1]
      assert_match(/ tags=globex,blue tenant=globex INFO:/, lines_of(io, "tags")[0])
      assert_equal "[tenant=globex] log job says tags to rails", lines_of(io, "tags")[1]
      assert_includes lines_of(io, "both")[0], " tenant=acme INFO:"
      assert_equal "[tenant=acme] log job says both to rails", lines_of(io, "both")[1]
      refute_includes lines_of(io, "blank")[0], "tenant="
      assert_equal "log job says blank to rails", lines_of(io, "blank")[1]
    end
  end

  def test_a_job_without_a_tenant_has_none_and_nothing_lingers_after_a_failure
    with_logs do |io|
      post_job(push(LogJob, "none"))
      sidekiq, rails = lines_of(io, "none")
      refute_includes sidekiq, "tenant="
      assert_equal "log job says none to rails", rails

      assert_equal 422, post_job(push(LogJob, "raised", true), headers: {"Courier-Tenant" => "acme"}).status
      assert_equal "[tenant=acme] log job says raised to rails", lines_of(io, "raised")[1]
      Rails.logger.info("after the job")
      assert_equal "after the job", io.string.lines.last.chomp, "the tag was popped though the job raised"
      assert_empty Thread.current[:sidekiq_context].to_h, "no log context outside a job"
    end
  end

  def test_a_rails_logger_without_tags_is_left_alone
    with_logs(tagged: false) do |io|
      assert_equal 200, post_job(push(LogJob, "plain"), headers: {"Courier-Tenant" => "acme"}).status
      sidekiq, rails = lines_of(io, "plain")
      assert_includes sidekiq, " tenant=acme INFO:"
      assert_equal "log job says plain to rails", rails
    end
  end

  def test_batch_entries_carry_their_own_tenant
    entries = [
      {"payload" => push(LogJob, "first"), "tenant" => "acme"},
      {"payload" => with_fields(push(LogJob, "second"), "tenant" => "initech")},
      {"payload" => with_fields(push(LogJob, "third"), "tenant" => "initech"), "queue" => "default", "tenant" => "globex"}
    ]
    with_logs do |io|
      assert_equal 200, batch(entries).status
      assert_equal [200, 200, 200], answer["results"].map { |r| r["code"] }
      assert_equal "[tenant=acme] log job says first to rails", lines_of(io, "first")[1]
      assert_equal "[tenant=initech] log job says second to rails", lines_of(io, "second")[1]
      assert_equal "[tenant=globex] log job says third to rails", lines_of(io, "third")[1]
      assert_includes lines_of(io, "third")[0], " tenant=globex INFO:"
    end
  end

  def test_stream_entries_carry_their_tenant_onto_the_job_threads
    @app = built.app
    entries = [{"payload" => push(LogJob, "streamed"), "tenant" => "acme"},
               {"payload" => push(LogJob, "untenanted")}]
    with_logs do |io|
      batch(entries, path: "/v1/jobs/stream")
      lines = last_response.body.each_line.map { |l| JSON.parse(l) }
      assert_equal [200, 200], lines.first(2).map { |l| l["code"] }
      sidekiq, rails = lines_of(io, "streamed")
      assert_includes sidekiq, " tenant=acme INFO:"
      assert_equal "[tenant=acme] log job says streamed to rails", rails
      assert_equal "log job says untenanted to rails", lines_of(io, "untenanted")[1],
                   "the one job thread, having run a tenant's job, keeps no tag"
    end
  end
end
