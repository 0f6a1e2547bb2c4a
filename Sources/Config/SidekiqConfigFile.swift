// An existing `config/sidekiq.yml`, read the way Sidekiq reads it: ERB
// expanded, then YAML, then the keys courier honours (queues, concurrency,
// timeout, limits, …) with Sidekiq's precedence between environments.
import SidekiqModel

/// The parts of an existing `config/sidekiq.yml` courier honours:
/// `:concurrency:`, `:queues:` (`- name` or `- [name, weight]`), `:timeout:`,
/// `:tag:`, `:labels:`, `:max_retries:`, `:poll_interval_average:`, and
/// courier's own `:limits:` (`queue: N`), `:limiters:`, `:periodic:`, `:tenant_key:`, `:metrics_tenants:`
/// and `:metrics_tenant_limit:`. Keys may be written with or
/// without Sidekiq's leading colon; a section named after `RAILS_ENV` /
/// `RACK_ENV` is merged over the top level, as Sidekiq does. ERB of the
/// common `<%= ENV['NAME'] %>` / `ENV.fetch('NAME', default)` forms is expanded.
public struct SidekiqConfigFile: Sendable, Equatable {
    /// `:concurrency:`; nil when the file does not set it (as for every field here).
    public var concurrency: Int?
    /// `:queues:` in file order, each `name` or `[name, weight]`.
    public var queues: [QueueSpec]?
    /// `:timeout:`: seconds SIGTERM waits for in-flight jobs (courier's `-t`).
    public var timeout: Int?
    /// `:tag:` for the process info.
    public var tag: String?
    /// `:labels:` for the process info.
    public var labels: [String]?
    /// `:max_retries:` for `retry: true` jobs.
    public var maxRetries: Int?
    /// `:poll_interval_average:` in seconds (> 0).
    public var pollIntervalAverage: Double?
    /// Courier's own `:limits:` (`queue: N`, N ≥ 1); empty when absent.
    public var limits: [String: Int] = [:]
    /// Courier's own `:tenant_key:` (as `--tenant-key`).
    public var tenantKey: String?
    /// Courier's own `:metrics_tenants:`: a list, or a comma-separated string (as `--metrics-tenants`).
    public var metricsTenants: [String]?
    /// Courier's own `:metrics_tenant_limit:` (as `--metrics-tenant-limit`).
    public var metricsTenantLimit: Int?
    /// Courier's own `:periodic:` jobs (docs/periodic-jobs.md); empty when absent.
    public var periodic: [PeriodicJob] = []
    /// Courier's own `:periodic_lease:` seconds (the leader lease's time to live).
    public var periodicLease: Int?
    /// Courier's own `:limiters:` (docs/limiters.md): cluster-wide concurrency and rate limits; empty when absent.
    public var limiters: [Limiter] = []

    /// Reads `text` (the file at `path`, named in errors); `environment` gives `RAILS_ENV`/`RACK_ENV` and the ERB's `ENV` values.
    /// An empty file sets nothing; anything else that is not a mapping of options throws.
    public init(path: String, text: String, environment: [String: String]) throws(ConfigurationError) {
        let expanded = Self.expandERB(text, environment: environment)
        let root: YAMLNode?
        do { root = try YAMLReader.read(expanded) } catch { throw ConfigurationError("-C \(path)", "not valid YAML: \(error)") }
        guard var options = Self.normalised(root) else {
            if root == nil || root == .null { return }
            throw ConfigurationError("-C \(path)", "expected a mapping of Sidekiq options")
        }
        if let env = environment["RAILS_ENV"] ?? environment["RACK_ENV"], let section = Self.normalised(options[env]) {
            options.merge(section) { $1 }
        }
        func integer(_ key: String) throws(ConfigurationError) -> Int? {
            guard let value = options[key], value != .null else { return nil }
            if let n = value.int ?? value.text.flatMap({ Int($0) }) { return n }
            throw ConfigurationError("-C \(path)", ":\(key): must be a whole number, got '\(value.display)'")
        }
        concurrency = try integer("concurrency")
        metricsTenantLimit = try integer("metrics_tenant_limit")
        periodicLease = try integer("periodic_lease")
        if let section = options["periodic"] {
            let tzdir = environment["TZDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/usr/share/zoneinfo"
            periodic = try PeriodicConfig.jobs(section, path: path) { name throws(CronError) in try PeriodicConfig.systemZone(name, tzdir: tzdir) }
        }
        if let section = options["limiters"] { limiters = try LimiterConfig.limiters(section, path: path) }
        if let value = options["tenant_key"], value != .null {
            guard let text = value.rubyText else { throw ConfigurationError("-C \(path)", ":tenant_key: must be a string") }
            tenantKey = text
        }
        if let value = options["metrics_tenants"], value != .null {
            switch value {
            case let .sequence(list): metricsTenants = list.map { $0.rubyText ?? $0.display }
            default:
                guard let text = value.rubyText else { throw ConfigurationError("-C \(path)", ":metrics_tenants: must be a list") }
                metricsTenants = text.split(separator: ",").map(String.init)
            }
        }
        timeout = try integer("timeout")
        maxRetries = try integer("max_retries")
        if let value = options["poll_interval_average"], value != .null {
            guard let seconds = value.double ?? value.text.flatMap({ Double($0) }), seconds.isFinite, seconds > 0 else {
                throw ConfigurationError("-C \(path)", ":poll_interval_average: must be a number of seconds > 0")
            }
            pollIntervalAverage = seconds
        }
        if let value = options["tag"], value != .null { tag = value.rubyText ?? value.display }
        if let value = options["labels"], value != .null {
            guard case let .sequence(list) = value else { throw ConfigurationError("-C \(path)", ":labels: must be a list") }
            labels = list.map { $0.rubyText ?? $0.display }
        }
        if let list = options["queues"], list != .null {
            guard case let .sequence(items) = list else { throw ConfigurationError("-C \(path)", ":queues: must be a list") }
            var specs: [QueueSpec] = []
            for item in items {
                do {
                    switch item {
                    case .scalar:
                        specs.append(try QueueSpec.parse(item.rubyText!))
                    case let .sequence(pair) where (pair.count == 1 || pair.count == 2) && pair[0].rubyText != nil:
                        let weight = pair.count == 2 ? pair[1].display : "0"
                        specs.append(try QueueSpec.parse("\(pair[0].rubyText!),\(weight)"))
                    default:
                        throw QueuePlanError("queue entry '\(item.display)' must be a name or [name, weight]")
                    }
                } catch {
                    throw ConfigurationError("-C \(path)", ":queues: \(error)")
                }
            }
            queues = specs
        }
        if let raw = options["limits"], raw != .null {
            guard case let .mapping(pairs) = raw else { throw ConfigurationError("-C \(path)", ":limits: must map queue names to numbers") }
            for (key, value) in pairs {
                guard let n = value.int, n >= 1 else { throw ConfigurationError("-C \(path)", ":limits: \(key) must be a whole number ≥ 1") }
                limits[key.trimmingColon] = n
            }
        }
    }

    /// A mapping with `:key` and `key` both read as `key`.
    private static func normalised(_ value: YAMLNode?) -> [String: YAMLNode]? {
        guard case let .mapping(pairs)? = value else { return nil }
        var out: [String: YAMLNode] = [:]
        for (key, v) in pairs { out[key.trimmingColon] = v }
        return out
    }

    /// Expands `<%= ENV['X'] %>`, `<%= ENV.fetch('X', default) %>`, `<%= ENV['X'] || default %>`.
    static func expandERB(_ text: String, environment: [String: String]) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstRange(of: "<%=") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstRange(of: "%>") else { break }
            let code = rest[open.upperBound..<close.lowerBound].trimmingSpaces
            out += evaluate(code, environment: environment)
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    private static func evaluate(_ code: String, environment: [String: String]) -> String {
        // Conversions at the end change nothing in YAML text: ENV.fetch("X", 5).to_i reads as ENV.fetch("X", 5).
        var code = code
        while let dot = code.lastIndex(of: "."), ["to_i", "to_s", "to_f", "to_sym", "strip"].contains(String(code[code.index(after: dot)...])) {
            code = String(code[..<dot]).trimmingSpaces
        }
        func literal(_ s: Substring) -> String {
            var t = String(s).trimmingSpaces
            if let f = t.first, f == "'" || f == "\"", t.count >= 2 { t = String(t.dropFirst().dropLast()) }
            return t
        }
        func name(after prefix: String, in s: String) -> (String, Substring)? {
            guard s.hasPrefix(prefix) else { return nil }
            let body = s.dropFirst(prefix.count)
            guard let q = body.first, q == "'" || q == "\"", let end = body.dropFirst().firstIndex(of: q) else { return nil }
            return (String(body[body.index(after: body.startIndex)..<end]), body[body.index(after: end)...])
        }
        if let (key, tail) = name(after: "ENV.fetch(", in: code) {
            if let v = environment[key] { return v }
            let args = tail.drop { $0 == " " || $0 == "," }
            if args.hasPrefix(")") {
                // ENV.fetch("X") { default }: the block gives the default.
                let block = args.dropFirst().drop { $0 == " " }
                guard block.hasPrefix("{"), let close = block.lastIndex(of: "}") else { return "" }
                return literal(block[block.index(after: block.startIndex)..<close])
            }
            return literal(args.hasSuffix(")") ? args.dropLast() : args)
        }
        if let (key, tail) = name(after: "ENV[", in: code) {
            if let v = environment[key], !v.isEmpty { return v }
            let rest = tail.drop { $0 == "]" || $0 == " " }
            if rest.hasPrefix("||") { return literal(rest.dropFirst(2)) }
            return ""
        }
        return ""
    }
}

extension String {
    var trimmingColon: String { hasPrefix(":") ? String(dropFirst()) : self }
}
