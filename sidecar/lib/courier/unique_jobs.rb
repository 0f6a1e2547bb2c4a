# frozen_string_literal: true

require "digest"
require "json"

module Courier
  # Unique jobs for apps whose jobs Courier runs, after Sidekiq Enterprise's
  # (`sidekiq_options unique_for: 10.minutes, unique_until: :start|:success`),
  # docs/unique-jobs.md. Two halves:
  #
  #   * ClientMiddleware, in the Rails app's Sidekiq client chain: on push,
  #     takes the job's lock (SET key jid NX PX ttl) or refuses the push
  #     (perform_async returns nil, as under Enterprise), and writes the lock's
  #     key into the payload ("unique_key", "unique_until").
  #   * Release, in the sidecar around perform (JobRunner): frees the lock when
  #     the job starts (unique_until :start) or once it returned (:success,
  #     the default), and only while it still holds this job's jid.
  #
  # The lock key is "courier:unique:" + hex SHA-256 of the JSON array
  # [class, queue, args] (Hash keys sorted, so equal Ruby hashes give one key);
  # an ActiveJob job uses [wrapped class, queue, its "arguments"], since its
  # envelope carries a fresh job_id and enqueued_at on every push.
  #
  # Loadable on its own (`require "courier/unique_jobs"`): needs Sidekiq only
  # when enable! is called.
  module UniqueJobs
    PREFIX = "courier:unique:"
    UNTIL = {"start" => "start", "success" => "success"}.freeze
    DEFAULT_UNTIL = "success"

    # KEYS[1] lock, ARGV[1] jid: deletes the lock only if it is still this jid's.
    RELEASE = <<~LUA
      if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
      return 0
    LUA

    # KEYS[1] lock, ARGV[1] holder jid, ARGV[2] new jid, ARGV[3] ttl ms: the
    # running job hands its lock to the copy it enqueues (ActiveJob's
    # retry_on, a job rescheduling itself), never a lock another jid holds.
    HANDOVER = <<~LUA
      if redis.call("GET", KEYS[1]) == ARGV[1] then
        redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
        return 1
      end
      return 0
    LUA

    # The job (jid) running on this thread and the lock it holds until it
    # succeeds; set by Release.around.
    HOLDER = :courier_unique_holder

    module_function

    # The one line for config/initializers/sidekiq.rb: the client middleware
    # in both chains (configure_client runs in Rails processes, configure_server
    # in the sidecar and in Sidekiq, where jobs enqueue jobs too).
    def enable!
      require "sidekiq"
      ::Sidekiq.configure_client { |config| add_to(config) }
      ::Sidekiq.configure_server { |config| add_to(config) }
    end

    def add_to(config)
      config.client_middleware { |chain| chain.add(ClientMiddleware) }
    end

    # "courier:unique:<hex sha256>" for a job hash (as the client middleware
    # sees it: class and wrapped may still be Class objects).
    def key_for(job, queue = job["queue"])
      klass = job["class"].to_s
      args = job["args"]
      if job["wrapped"] && args.is_a?(Array) && args.size == 1 && args[0].is_a?(Hash) && args[0].key?("arguments")
        klass = job["wrapped"].to_s
        args = args[0]["arguments"]
      end
      PREFIX + Digest::SHA256.hexdigest(JSON.generate([klass, queue.to_s, canonical(args)]))
    end

    # Hashes with their keys sorted (as strings), recursively.
    def canonical(value)
      case value
      when Hash then value.map { |k, v| [k.to_s, canonical(v)] }.sort_by(&:first).to_h
      when Array then value.map { |v| canonical(v) }
      else value
      end
    end

    # unique_for as seconds (Integer when whole), nil when off (nil/false);
    # raises ArgumentError for anything else that is not a positive duration.
    def seconds(unique_for)
      return nil if unique_for.nil? || unique_for == false

      s = unique_for.respond_to?(:to_f) && !unique_for.is_a?(String) ? unique_for.to_f : nil
      raise ArgumentError, "unique_for must be a positive number of seconds, got #{unique_for.inspect}" unless s&.finite? && s.positive?

      s == s.floor ? s.to_i : s
    end

    def until_of(value)
      return DEFAULT_UNTIL if value.nil?

      UNTIL.fetch(value.to_s) { raise ArgumentError, "unique_until must be :start or :success, got #{value.inspect}" }
    end

    # The lock's time to live in ms: unique_for, counted from the job's run
    # time when it is scheduled ("at" in the future).
    def ttl_ms(unique_for, at, now = Time.now.to_f)
      delay = at.is_a?(Numeric) ? [at - now, 0].max : 0
      [((unique_for + delay) * 1000).ceil, 1].max
    end

    # true if the lock was this jid's and is now gone.
    def release(conn, key, jid)
      conn.call("EVAL", RELEASE, 1, key, jid).to_i == 1
    end

    # Sidekiq client middleware, 6.x and 7.x alike: call(class, job, queue,
    # redis_pool), the pool being the one the job is pushed to
    # (Sidekiq::Client.via). It needs nothing of 7.x's Sidekiq::ClientMiddleware
    # (config, logger), so it works whichever of the two loads first.
    class ClientMiddleware
      # Returns the job (pushed) or nil (a duplicate: not pushed).
      def call(_worker_class, job, queue, redis_pool)
        secs = UniqueJobs.seconds(job["unique_for"])
        return yield unless secs

        unique_until = UniqueJobs.until_of(job["unique_until"])
        key = UniqueJobs.key_for(job, queue)
        jid = job["jid"]
        ttl = UniqueJobs.ttl_ms(secs, job["at"])
        return nil unless redis_pool.with { |conn| lock(conn, key, jid, ttl) }

        job["unique_for"] = secs
        job["unique_until"] = unique_until
        job["unique_key"] = key
        begin
          pushed = yield
        rescue Exception # rubocop:disable Lint/RescueException -- the push failed: do not block the next one
          redis_pool.with { |conn| UniqueJobs.release(conn, key, jid) }
          raise
        end
        # A later middleware that stopped the push must not leave its lock behind.
        redis_pool.with { |conn| UniqueJobs.release(conn, key, jid) } unless pushed
        pushed
      end

      private

      # SET NX; else, from inside the job that holds this lock, a handover.
      def lock(conn, key, jid, ttl)
        return true if conn.call("SET", key, jid, "NX", "PX", ttl)

        holder = Thread.current[HOLDER]
        return false unless holder && holder[0] == key && holder[1] != jid

        conn.call("EVAL", HANDOVER, 1, key, holder[1], jid, ttl).to_i == 1
      end
    end

    # The sidecar's half (JobRunner): frees a job's lock at the moment its
    # payload says. `redis` yields a connection (Sidekiq.redis); `report`
    # gets (error, context) when Redis fails, the job's outcome does not
    # change then and the lock expires by its TTL.
    class Release
      def initialize(redis:, report:)
        @redis = redis
        @report = report
      end

      # Runs the block (the middleware chain and perform) for a job whose
      # payload has a "unique_key": released before it (start) or after it
      # returned (success); a job that raised keeps its lock.
      def around(job, key)
        jid = job["jid"]
        if job["unique_until"] == "start"
          release(job, key, jid)
          return yield
        end

        previous = Thread.current[HOLDER]
        Thread.current[HOLDER] = [key, jid]
        begin
          result = yield
        ensure
          Thread.current[HOLDER] = previous
        end
        release(job, key, jid)
        result
      end

      private

      def release(job, key, jid)
        @redis.call { |conn| UniqueJobs.release(conn, key, jid) }
      rescue StandardError => e
        @report.call(e, {context: "Courier could not release the unique lock #{key}", job: job})
        false
      end
    end
  end
end
