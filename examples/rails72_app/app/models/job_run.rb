# frozen_string_literal: true

# A job ran: written by the jobs themselves.
class JobRun < ApplicationRecord
end
