# frozen_string_literal: true

module Courier
  module Sidecar
    # What the dispatcher says about one job besides its payload: the queue it
    # was fetched from, and the optional tenant and W3C traceparent
    # (protocol.md, "Optional per-job fields"). /v1/jobs takes them from the
    # Courier-Queue, Courier-Tenant and traceparent headers, a batch or stream
    # entry from its "queue", "tenant" and "traceparent" fields.
    #
    # Passed along as App#outcome's second argument: the bare queue name (or
    # nil) when there is neither tenant nor traceparent, so a job without them
    # allocates nothing; a Delivery only when there is one.
    Delivery = Struct.new(:queue, :tenant, :traceparent) do
      # The queue itself when tenant and traceparent are absent (or not
      # non-empty strings), else a Delivery.
      def self.of(queue, tenant, traceparent)
        tenant = nil unless tenant.is_a?(String) && !tenant.empty?
        traceparent = nil unless traceparent.is_a?(String) && !traceparent.empty?
        return queue unless tenant || traceparent

        new(queue, tenant, traceparent)
      end
    end
  end
end
