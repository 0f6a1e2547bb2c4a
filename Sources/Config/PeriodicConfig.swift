// The `periodic:` section of sidekiq.yml: periodic job entries in the shape
// sidekiq-cron and sidekiq-scheduler use (`cron`, `class`, `queue`, `args`),
// validated into PeriodicJob values; and time zones from the system tz database.
import CourierSupport
import SidekiqModel

enum PeriodicConfig {
    static let entryKeys: Set<String> = ["cron", "class", "queue", "args", "retry", "tz", "timezone", "grace", "description", "name"]

    /// Reads the section (a mapping `name: {…}` or a list of `{name: …, …}`); errors name the entry.
    static func jobs(
        _ section: YAMLNode, path: String, loadZone: (String) throws(CronError) -> ZoneRules
    ) throws(ConfigurationError) -> [PeriodicJob] {
        func fail(_ message: String) -> ConfigurationError { ConfigurationError("-C \(path)", ":periodic: \(message)") }
        var entries: [(String, YAMLNode)] = []
        switch section {
        case .null: return []
        case let .mapping(pairs): entries = pairs.map { ($0.key.trimmingColon, $0.value) }
        case let .sequence(items):
            for (i, item) in items.enumerated() {
                guard case let .mapping(pairs) = item, let name = pairs.first(where: { $0.key.trimmingColon == "name" })?.value.rubyText else {
                    throw fail("entry \(i + 1) needs a name")
                }
                entries.append((name, item))
            }
        default: throw fail("must map job names to {cron:, class:, …}")
        }
        var jobs: [PeriodicJob] = []
        var seen: Set<String> = []
        for (name, node) in entries {
            func bad(_ message: String) -> ConfigurationError { fail("'\(name)': \(message)") }
            guard !name.isEmpty, name.allSatisfy({ !$0.isWhitespace && $0 != ":" }) else {
                throw fail("'\(name)': a name must be non-empty, without spaces or ':'")
            }
            guard seen.insert(name).inserted else { throw bad("declared twice") }
            guard case let .mapping(pairs) = node else { throw bad("must be a mapping with cron: and class:") }
            var fields: [String: YAMLNode] = [:]
            for (key, value) in pairs {
                let key = key.trimmingColon
                guard entryKeys.contains(key) else { throw bad("unknown key '\(key)' (known: cron, class, queue, args, retry, tz, grace)") }
                fields[key] = value
            }
            guard let cronText = fields["cron"]?.rubyText, !cronText.isEmpty else { throw bad("cron: is required") }
            guard let jobClass = fields["class"]?.rubyText, !jobClass.isEmpty else { throw bad("class: is required") }
            // fugit's form "0 9 * * * Europe/Berlin": a zone after the fields.
            var cronWords = cronText.split(separator: " ").map(String.init)
            var zoneName = (fields["tz"] ?? fields["timezone"])?.rubyText
            if cronWords.count >= 6, let last = cronWords.last, last.contains("/") || last == "UTC" || last == "Etc/UTC" {
                if zoneName != nil { throw bad("a zone both in cron: and tz:") }
                zoneName = last
                cronWords.removeLast()
            }
            let expression: CronExpression
            do { expression = try CronExpression(cronWords.joined(separator: " ")) } catch { throw bad("cron: \(error)") }
            var zone = ZoneRules.utc
            if let zoneName { do { zone = try loadZone(zoneName) } catch { throw bad("tz: \(error)") } }
            let schedule = CronSchedule(expression: expression, zone: zone)
            guard schedule.next(after: 0) != nil || schedule.next(after: 1_750_000_000) != nil else { throw bad("cron: '\(cronText)' never fires") }
            var queue = "default"
            if let q = fields["queue"], q != .null {
                guard let text = q.rubyText, !text.isEmpty, !text.contains(" ") else { throw bad("queue: must be a queue name") }
                queue = text
            }
            var args = "[]"
            if let a = fields["args"], a != .null {
                if case .sequence = a { args = json(a) } else { args = "[" + json(a) + "]" }  // sidekiq-cron wraps a single value
            }
            var retry = "true"
            if let r = fields["retry"], r != .null {
                if let b = r.bool {
                    retry = b ? "true" : "false"
                } else if let n = r.int, n >= 0 {
                    retry = String(n)
                } else {
                    throw bad("retry: must be true, false or a whole number ≥ 0")
                }
            }
            var grace = PeriodicJob.defaultGrace
            if let g = fields["grace"], g != .null {
                guard let n = g.int, (1...604_800).contains(n) else { throw bad("grace: must be 1…604800 seconds") }
                grace = n
            }
            jobs.append(PeriodicJob(name: name, schedule: schedule, jobClass: jobClass, queue: queue, argsJSON: args, retryJSON: retry, grace: grace))
        }
        return jobs
    }

    /// A YAML value as the JSON Sidekiq's client would write for the Ruby value Psych reads.
    static func json(_ node: YAMLNode) -> String {
        switch node {
        case .null: return "null"
        case let .sequence(items): return "[" + items.map(json).joined(separator: ",") + "]"
        case let .mapping(pairs):
            return "{" + pairs.map { JSONWriter.string($0.key.trimmingColon) + ":" + json($0.value) }.joined(separator: ",") + "}"
        case let .scalar(text, quoted):
            if quoted { return JSONWriter.string(text) }
            switch PlainScalar(text) {
            case .null: return "null"
            case let .bool(b): return b ? "true" : "false"
            case let .int(n): return String(n)
            case let .float(d) where d.isFinite: return JSONWriter.float(d)
            case let .symbol(name): return JSONWriter.string(name)
            default: return JSONWriter.string(text)
            }
        }
    }

    /// A zone from the system tz database (`/usr/share/zoneinfo`, or `$TZDIR`); `UTC` needs no file.
    static func systemZone(_ name: String, tzdir: String) throws(CronError) -> ZoneRules {
        if ["UTC", "Etc/UTC", "Z", "GMT", "Etc/GMT"].contains(name) { return .utc }
        guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains(".."), name.allSatisfy({ !$0.isWhitespace }) else {
            throw CronError("'\(name)' is not a time zone name")
        }
        guard let bytes = readFileBytes(tzdir + "/" + name) else { throw CronError("unknown time zone '\(name)' (not in \(tzdir))") }
        return try ZoneRules(name: name, tzif: bytes)
    }
}
