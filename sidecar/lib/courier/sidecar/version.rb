# frozen_string_literal: true

module Courier
  module Sidecar
    VERSION = "0.1.0"
    # Wire protocol major version: the /v1/ path prefix. Bumped only for
    # incompatible changes (see docs/protocol.md, "Versioning").
    PROTOCOL_VERSION = 1
  end
end
