// Which tenant a job belongs to, by the app's own convention (`--tenant-key`):
// sources tried in order until one gives a value — a top-level payload key
// (`tenant`, `tenant_id`, `account_id`, …), Sidekiq's `tags` (the first
// one), or a job argument (`arg:N`, or `arg:N:KEY` for a key of a hash
// argument). For ActiveJob jobs the arguments are ActiveJob's own (inside
// the wrapper's hash), and a GlobalID argument
// (`{"_aj_globalid":"gid://app/Account/42"}`) reads as `Account/42`.
// Logs carry the value as found; metrics bound it (Ops' LabelBound).

/// A `--tenant-key` value that cannot be read; the message says why.
public struct TenantRuleError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where a job's tenant is read from, in order.
public struct TenantRule: Sendable, Equatable, CustomStringConvertible {
    /// One place a tenant can be.
    public enum Source: Sendable, Equatable {
        /// A top-level payload key; a string or an integer value.
        case key(String)
        /// Sidekiq's `tags`: the first one that is a string.
        case tags
        /// The job's argument at `index` (ActiveJob: its `arguments`); with `key`, that key of a hash argument.
        case argument(index: Int, key: String?)
    }

    /// Tried in order; the first that gives a value wins.
    public var sources: [Source]

    /// `tenant`, then the first of `tags` (what courier read before the flag existed).
    public static let `default` = TenantRule(sources: [.key("tenant"), .tags])
    /// Longer values are cut to this many characters (they go into headers and log lines).
    public static let maxLength = 200

    public init(sources: [Source]) { self.sources = sources }

    /// Reads a comma-separated list: `KEY`, `tags`, `arg:N` or `arg:N:KEY`, e.g. `tenant_id,tags`.
    public init(parsing text: String) throws(TenantRuleError) {
        var sources: [Source] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let token = String(part.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            guard !token.isEmpty else { throw TenantRuleError("'\(text)' has an empty entry") }
            guard !token.contains(where: { $0 == " " || $0 == "\"" }) else { throw TenantRuleError("'\(token)' must not contain spaces or quotes") }
            if token == "tags" {
                sources.append(.tags)
            } else if token.hasPrefix("arg:") {
                let fields = token.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard fields.count >= 2, let index = Int(fields[1]), (0...99).contains(index) else {
                    throw TenantRuleError("'\(token)' must be arg:N or arg:N:KEY with N 0…99")
                }
                if fields.count == 3 {
                    guard !fields[2].isEmpty else { throw TenantRuleError("'\(token)' has an empty KEY") }
                    sources.append(.argument(index: index, key: String(fields[2])))
                } else {
                    sources.append(.argument(index: index, key: nil))
                }
            } else {
                sources.append(.key(token))
            }
        }
        self.sources = sources
    }

    /// The rule written back as `--tenant-key` takes it.
    public var description: String {
        sources.map { source in
            switch source {
            case let .key(k): k
            case .tags: "tags"
            case let .argument(i, k?): "arg:\(i):\(k)"
            case let .argument(i, nil): "arg:\(i)"
            }
        }.joined(separator: ",")
    }

    /// The job's tenant, or nil when no source gives one.
    public func tenant(of payload: JobPayload) -> String? {
        for source in sources {
            let found: String?
            switch source {
            case let .key(key):
                found = payload[key].flatMap(Self.text)
            case .tags:
                found = payload["tags"]?.arrayValue?.first?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
            case let .argument(index, key):
                found = Self.argument(of: payload, index: index).flatMap { arg in key.map { arg[$0] } ?? arg }.flatMap(Self.text)
            }
            if let found { return found.count > Self.maxLength ? String(found.prefix(Self.maxLength)) : found }
        }
        return nil
    }

    /// A value as a tenant: a non-empty string, an integer, or a GlobalID (`Model/id`).
    static func text(_ value: JSONValue) -> String? {
        switch value {
        case let .string(s): return s.isEmpty ? nil : s
        case let .number(_, text) where value.isIntegerLiteral: return text
        case .object: return value["_aj_globalid"]?.stringValue.flatMap(globalIDOwner)
        default: return nil
        }
    }

    /// `gid://app/Account/42` → `Account/42` (the model and its id; the app name and any `?params` dropped).
    public static func globalIDOwner(_ gid: String) -> String? {
        guard gid.hasPrefix("gid://") else { return nil }
        var rest = gid.dropFirst(6)
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        let parts = rest.split(separator: "/", maxSplits: 1)
        guard parts.count == 2, parts[1].contains("/"), !parts[1].hasSuffix("/") else { return nil }
        return String(parts[1])
    }

    /// Argument `index`: of ActiveJob's `arguments` when the job is an ActiveJob wrapper, else of `args`.
    static func argument(of payload: JobPayload, index: Int) -> JSONValue? {
        guard let args = payload["args"]?.arrayValue else { return nil }
        if payload.rawValue(of: "wrapped") != nil, let first = args.first, let arguments = first["arguments"]?.arrayValue {
            return index < arguments.count ? arguments[index] : nil
        }
        return index < args.count ? args[index] : nil
    }
}
