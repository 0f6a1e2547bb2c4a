# frozen_string_literal: true

# A hook ran (death handler, retries exhausted, ActiveJob callbacks).
class Event < ApplicationRecord
end
