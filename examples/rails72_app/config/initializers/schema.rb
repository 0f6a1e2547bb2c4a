# frozen_string_literal: true

# The example keeps no migrations: db/schema.rb is applied on boot when the
# tables are missing (db/*.sqlite3 is gitignored). WAL lets the sidecar's
# Puma workers write concurrently with readers.
Rails.application.config.after_initialize do
  ActiveRecord::Base.connection_pool.with_connection do |conn|
    conn.execute("PRAGMA journal_mode=WAL")
    ActiveRecord::Migration.verbose = false
    load Rails.root.join("db", "schema.rb").to_s unless conn.table_exists?(:job_runs)
  end
end
