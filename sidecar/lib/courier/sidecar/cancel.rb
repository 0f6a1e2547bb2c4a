# frozen_string_literal: true

module Courier
  # Redis sorted set the couriers read once per heartbeat: jid → time of the
  # request. A courier running that jid interrupts it (Courier::JobCancelled)
  # and neither retries nor buries it. Entries older than 5 minutes are dropped.
  CANCEL_KEY = "courier:cancel"

  # Cancels a running job by jid, from the app itself (a controller, a
  # console, another job). Goes through Sidekiq's Redis connection, so a
  # redis-namespace prefix applies as for every other Sidekiq key.
  def self.cancel(jid)
    raise ArgumentError, "jid must be a non-empty String" unless jid.is_a?(String) && !jid.empty?

    ::Sidekiq.redis { |conn| conn.zadd(CANCEL_KEY, Time.now.to_f, jid) }
    true
  end
end
