// The `:limiters:` section of sidekiq.yml: cluster-wide limiters with Sidekiq
// Enterprise's kinds and option names (`type: concurrent|bucket|window`,
// `count`, `interval`, `lock_timeout`, `wait_timeout`), plus what each applies
// to (`class`/`classes`, `queue`/`queues`), validated into Limiter values.
// Errors name the limiter and the key.
import SidekiqModel

enum LimiterConfig {
    static let entryKeys: Set<String> = ["type", "count", "interval", "lock_timeout", "wait_timeout", "class", "classes", "queue", "queues"]

    /// Reads the section: a mapping `name: {type:, count:, …}`.
    static func limiters(_ section: YAMLNode, path: String) throws(ConfigurationError) -> [Limiter] {
        func fail(_ message: String) -> ConfigurationError { ConfigurationError("-C \(path)", ":limiters: \(message)") }
        let entries: [(key: String, value: YAMLNode)]
        switch section {
        case .null: return []
        case let .mapping(pairs): entries = pairs
        default: throw fail("must map limiter names to {type:, count:, class: or queue:}")
        }
        var limiters: [Limiter] = []
        var seen: Set<String> = []
        for (rawName, node) in entries {
            let name = rawName.trimmingColon
            func bad(_ message: String) -> ConfigurationError { fail("'\(name)': \(message)") }
            guard Limiter.isValidName(name) else { throw fail("'\(name)': a name is 1…100 letters, digits, '_', '-' or '.'") }
            guard seen.insert(name).inserted else { throw bad("declared twice") }
            guard case let .mapping(pairs) = node else { throw bad("must be a mapping with type:, count: and class: or queue:") }
            var fields: [String: YAMLNode] = [:]
            for (key, value) in pairs {
                let key = key.trimmingColon
                guard entryKeys.contains(key) else {
                    throw bad("unknown key '\(key)' (known: type, count, interval, lock_timeout, wait_timeout, class, queue)")
                }
                fields[key] = value
            }
            guard let typeText = fields["type"]?.rubyText, let kind = Limiter.Kind(rawValue: typeText) else {
                throw bad("type: must be concurrent, bucket or window")
            }
            guard let count = fields["count"]?.int, (1...1_000_000).contains(count) else { throw bad("count: must be a whole number 1…1000000") }
            var limiter = Limiter(name: name, kind: kind, count: count)
            if let node = fields["interval"], node != .null {
                guard kind != .concurrent else { throw bad("interval: is for bucket and window limiters (a concurrent one counts jobs running)") }
                if let n = node.int, (1...31_536_000).contains(n) {
                    limiter.interval = n
                } else if let text = node.rubyText, let n = Limiter.namedIntervals[text] {
                    limiter.interval = n
                } else {
                    throw bad("interval: must be second, minute, hour, day or a whole number of seconds 1…31536000, got '\(node.display)'")
                }
            } else if kind != .concurrent {
                throw bad("interval: is required for a \(kind.rawValue) limiter (second, minute, hour, day or seconds)")
            }
            if let node = fields["lock_timeout"], node != .null {
                guard kind == .concurrent else { throw bad("lock_timeout: is for concurrent limiters") }
                // The courier's heartbeat renews its leases every 5 s: a shorter timeout would let them lapse under a running job.
                guard let n = node.int, (10...86_400).contains(n) else { throw bad("lock_timeout: must be 10…86400 seconds") }
                limiter.lockTimeout = n
            }
            if let node = fields["wait_timeout"], node != .null {
                // Accepted for Enterprise's sake; an over-limit job waits in Redis, never in a thread.
                guard let n = node.double, n >= 0 else { throw bad("wait_timeout: must be a number of seconds ≥ 0") }
            }
            func names(_ keys: [String], what: String) throws(ConfigurationError) -> [String] {
                var out: [String] = []
                for key in keys {
                    guard let node = fields[key], node != .null else { continue }
                    let items: [YAMLNode]
                    if case let .sequence(list) = node { items = list } else { items = [node] }
                    for item in items {
                        guard let text = item.rubyText, !text.isEmpty, !text.contains(" ") else {
                            throw bad("\(key): must be a \(what) or a list of them")
                        }
                        out.append(text)
                    }
                }
                return out
            }
            limiter.classes = try names(["class", "classes"], what: "class name")
            limiter.queues = try names(["queue", "queues"], what: "queue name")
            guard !limiter.classes.isEmpty || !limiter.queues.isEmpty else { throw bad("needs class: or queue: (what it limits)") }
            limiters.append(limiter)
        }
        return limiters
    }
}
