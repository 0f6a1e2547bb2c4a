# frozen_string_literal: true

# sqlite3-ruby 1.x (Debian 12: 1.4, Debian 13: 1.7) implements `timeout:` with sqlite3_busy_timeout, which
# sleeps inside C *holding the GVL*: a thread waiting for the write lock
# freezes the very thread of its own process that holds it, until the
# timeout ("database is locked"). A Ruby busy handler sleeps with the GVL
# released, so Puma threads writing concurrently just queue up.
module CourierExample
  module SQLiteBusyHandler
    WAIT_S = 10.0

    def configure_connection
      super
      started = nil
      # Rails 7.1+ keeps the SQLite3::Database in @raw_connection, 6.1 in @connection.
      (@raw_connection || @connection).busy_handler do |count|
        now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        started = now if count.zero? # a new wait for the lock
        next false if now - started > WAIT_S

        sleep 0.001
        true
      end
    end
  end
end

ActiveSupport.on_load(:active_record) do
  require "active_record/connection_adapters/sqlite3_adapter"
  ActiveRecord::ConnectionAdapters::SQLite3Adapter.prepend(CourierExample::SQLiteBusyHandler)
end
