# frozen_string_literal: true

ActiveRecord::Schema.define(version: 1) do
  # One row per job run; the unique jid proves a job never ran twice.
  create_table :job_runs, if_not_exists: true do |t|
    t.string :jid, null: false
    t.string :job_class, null: false
    t.string :arg
    t.string :middleware
    t.timestamps
  end
  add_index :job_runs, :jid, unique: true, if_not_exists: true

  # Side effects of hooks: death handlers, sidekiq_retries_exhausted, AJ callbacks.
  create_table :events, if_not_exists: true do |t|
    t.string :kind, null: false
    t.string :jid
    t.string :job_class
    t.string :detail
    t.timestamps
  end

  # Passed to jobs as a GlobalID argument.
  create_table :widgets, if_not_exists: true do |t|
    t.string :name, null: false
    t.integer :touches, null: false, default: 0
    t.timestamps
  end
end
