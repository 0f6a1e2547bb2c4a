# frozen_string_literal: true

# ActiveJob with a GlobalID argument: the Widget is serialised as
# gid://courier-example/Widget/ID and found again when the job runs.
class WidgetTouchJob < ApplicationJob
  def perform(widget, note:)
    widget.increment!(:touches)
    record_run("#{widget.to_global_id}|#{note}")
  end
end
