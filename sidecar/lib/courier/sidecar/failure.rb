# frozen_string_literal: true

require "json"

module Courier
  module Sidecar
    # Builds the 422 answer for a job that raised: the exception, and the
    # job's own `sidekiq_retry_in` answer so the dispatcher can schedule the
    # retry without knowing the Ruby class.
    #
    # sidekiq_retry_in is called as Sidekiq 6.5+/7.x does, with
    # (count, exception, job) — or (count, exception) for a lambda of arity 2 —
    # where count is the retry_count this failure will get (payload
    # retry_count + 1, or 0 on the first failure). The answer maps to:
    #   Integer (or anything whose to_i is) > 0 → retry_in: seconds
    #   :kill / :discard                         → retry_action
    #   nil, 0, anything else, or the block raised → both null (default backoff)
    # For the ActiveJob wrapper the hooks are looked up on the wrapped class
    # (as Sidekiq 7.1.3+ does), because that is where the app declares them.
    class Failure
      MAX_MESSAGE = 10_000 # Sidekiq truncates error_message the same way

      def initialize(resolver, adapter)
        @resolver = resolver
        @adapter = adapter
      end

      def body(job, error, job_class)
        retry_in, action = retry_answer(job, error, job_class)
        JSON.generate(error_fields(error).merge!("status" => "failed", "retry_in" => retry_in, "retry_action" => action))
      end

      # The 409 answer: a cancel interrupted the job (`reason`: shutdown,
      # timeout or cancel). No retry answer: the dispatcher already decided.
      def interrupted_body(error, reason, started: true)
        fields = error_fields(error).merge!("status" => "interrupted", "reason" => reason.to_s)
        fields["started"] = false unless started
        JSON.generate(fields)
      end

      # The class whose sidekiq_* hooks apply to this job.
      def hook_class(job, job_class)
        wrapped = job["wrapped"]
        if wrapped.is_a?(String) && job_class.name == "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
          candidate = @resolver.loaded_constant(wrapped)
          return candidate if candidate.is_a?(Class) && candidate.respond_to?(:sidekiq_retry_in_block)
        end
        job_class
      end

      private

      def error_fields(error)
        {
          "error_class" => error.class.name || error.class.to_s,
          "error_message" => message_of(error),
          "backtrace" => (error.backtrace || []).map { |line| utf8(line) }
        }
      end

      def retry_answer(job, error, job_class)
        return [nil, nil] unless job_class

        klass = hook_class(job, job_class)
        block = klass.respond_to?(:sidekiq_retry_in_block) && klass.sidekiq_retry_in_block
        return [nil, nil] unless block

        count = job["retry_count"].is_a?(Integer) ? job["retry_count"] + 1 : 0
        answer = (block.lambda? && block.arity == 2) ? block.call(count, error) : block.call(count, error, job)
        case answer
        when :kill, :discard then [nil, answer.to_s]
        when Integer then [answer.positive? ? answer : nil, nil]
        else
          seconds = answer.respond_to?(:to_i) && !answer.is_a?(String) ? answer.to_i : 0
          [seconds.positive? ? seconds : nil, nil]
        end
      rescue Exception => e # rubocop:disable Lint/RescueException -- Sidekiq falls back to the default delay on any error
        @adapter.handle_exception(e, {context: "Failure scheduling retry using the defined `sidekiq_retry_in` in #{klass}, falling back to default"})
        [nil, nil]
      end

      def message_of(error)
        utf8(error.message.to_s[0, MAX_MESSAGE])
      rescue StandardError
        "!!! ERROR MESSAGE THREW AN ERROR !!!"
      end

      def utf8(string)
        s = string.to_s
        s.encoding == Encoding::UTF_8 && s.valid_encoding? ? s : s.dup.force_encoding(Encoding::UTF_8).scrub
      end
    end
  end
end
