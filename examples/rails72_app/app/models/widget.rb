# frozen_string_literal: true

# An Active Record model passed to ActiveJob as a GlobalID argument.
class Widget < ApplicationRecord
end
