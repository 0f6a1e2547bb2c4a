import Glibc
import SidekiqModel

// The pure steps between Redis replies and a StatusSnapshot: a process hash
// into a ProcessStatus, a queue's oldest job into its latency, a payload or
// work entry into its tenant, the keys and sums of the per-minute metrics,
// and the rate window `--watch` keeps. No I/O, no clock: times are passed in.

extension ProcessStatus {
    /// The fields read from each process hash, in this order (HMGET).
    public static let hashFields = ["info", "busy", "beat", "quiet", "rss", "concurrency", "courier"]

    /// Nil when the hash has no `info` (Sidekiq's ProcessSet skips and prunes those; status only skips them).
    public init?(identity: String, fields: [String?]) {
        func field(_ name: String) -> String? {
            guard let i = Self.hashFields.firstIndex(of: name), i < fields.count else { return nil }
            return fields[i]
        }
        guard let infoText = field("info"), let info = try? JSONReader.parse(infoText) else { return nil }
        let courier = field("courier").flatMap { try? JSONReader.parse($0) }.map {
            CourierFields(
                breaker: $0["breaker"]?.stringValue ?? "?", inFlight: $0["in_flight"]?.intValue ?? 0, executor: $0["executor"]?.stringValue ?? "")
        }
        self.init(
            identity: identity, hostname: info["hostname"]?.stringValue ?? "", pid: info["pid"]?.intValue, tag: info["tag"]?.stringValue ?? "",
            version: info["version"]?.stringValue, queues: (info["queues"]?.arrayValue ?? []).compactMap(\.stringValue),
            // 8.1.2+ writers have the hash field; older ones only the info's.
            concurrency: field("concurrency").flatMap { Int($0) } ?? info["concurrency"]?.intValue ?? 0,
            busy: field("busy").flatMap { Int($0) } ?? 0, quiet: field("quiet") == "true", beat: field("beat").flatMap { Double($0) },
            rssKB: field("rss").flatMap { Int($0) }, courier: courier)
    }
}

public enum StatusParsing {
    /// Seconds since `oldest`'s `enqueued_at` (integer milliseconds from Sidekiq 8 clients too); 0 when absent or unreadable.
    public static func latency(oldest: [UInt8]?, now: Double) -> Double {
        guard let oldest, let payload = try? JobPayload(raw: oldest), var enqueued = payload["enqueued_at"]?.doubleValue else { return 0 }
        if payload["enqueued_at"]?.isIntegerLiteral == true, enqueued > 1e11 { enqueued /= 1000 }
        return max(0, now - enqueued)
    }

    /// A job's tenant as courier's logs name it: its `tenant` field, else its first tag.
    public static func tenant(ofJob raw: [UInt8]) -> String? { (try? JobPayload(raw: raw))?.tenant }

    /// The tenant of a work entry (`{"queue":…,"payload":…,"run_at":…}`); the payload is a JSON string (courier,
    /// Sidekiq 6.4.2+) or an object (older writers).
    public static func tenant(ofWork raw: [UInt8]) -> String? {
        guard let entry = try? JSONReader.parse(raw), let payload = entry["payload"] else { return nil }
        if let text = payload.stringValue { return tenant(ofJob: Array(text.utf8)) }
        if let t = payload["tenant"]?.stringValue { return t }
        return payload["tags"]?.arrayValue?.first?.stringValue
    }

    /// The UTC minute before the one `now` is in: its start (epoch seconds) and the keys Sidekiq 7.x
    /// (`j|20261122|9:5`, also courier's) and 8.x (`j|261122|9:05`) write its counts to.
    public static func previousMinute(now: Double) -> (start: Double, keys: [String]) {
        let start = (now / 60).rounded(.down) * 60 - 60
        var seconds = time_t(start)
        var t = tm()
        gmtime_r(&seconds, &t)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let (year, month, day) = (t.tm_year + 1900, two(t.tm_mon + 1), two(t.tm_mday))
        let seven = "j|\(year)\(month)\(day)|\(t.tm_hour):\(t.tm_min)"
        let eight = "j|\(two(year % 100))\(month)\(day)|\(t.tm_hour):\(two(t.tm_min))"
        return (start, [seven, eight])
    }

    /// Sums a minute hash (`CLASS|p`, `CLASS|f`, `CLASS|ms` …) into jobs processed and failed.
    /// In Sidekiq 7's metrics `p` counts every job that ran and `f` those that raised.
    public static func minuteTotals(_ fields: [(String, String)]) -> (processed: Int, failed: Int) {
        var (processed, failed) = (0, 0)
        for (name, value) in fields {
            if name.hasSuffix("|p") { processed += Int(value) ?? 0 }
            if name.hasSuffix("|f") { failed += Int(value) ?? 0 }
        }
        return (processed, failed)
    }

    /// The one-shot rates: the last complete minute's metrics, when some writer of them is alive or wrote that minute.
    public static func minuteRates(
        totals: (processed: Int, failed: Int), keyExists: Bool, processes: [ProcessStatus], minuteStart: Double
    ) -> Rates {
        let writers = processes.filter(\.writesMinuteMetrics).count
        let others = processes.count - writers
        guard keyExists || writers > 0 else {
            return Rates(
                note: processes.isEmpty
                    ? "no process running and no per-minute metrics in Redis; --watch measures stat:processed"
                    : "no per-minute metrics (Sidekiq < 7 writes none); --watch measures stat:processed")
        }
        var note = "minute \(hourMinute(minuteStart)) UTC, Sidekiq 7 metrics"
        if others > 0 { note += "; \(others) process\(others == 1 ? "" : "es") of Sidekiq < 7 not counted" }
        return Rates(processed: totals.processed, failed: totals.failed, window: 60, source: .minuteMetrics, note: note)
    }

    /// `09:05` of an epoch time, UTC.
    public static func hourMinute(_ epoch: Double) -> String {
        var seconds = time_t(epoch.rounded(.down))
        var t = tm()
        gmtime_r(&seconds, &t)
        return (t.tm_hour < 10 ? "0" : "") + "\(t.tm_hour):" + (t.tm_min < 10 ? "0" : "") + "\(t.tm_min)"
    }
}

/// The counters `--watch` has seen, kept for up to a minute: the rate over that window covers every process,
/// Sidekiq 6 included, because `stat:processed`/`stat:failed` are counted by all of them.
public struct RateWindow: Sendable, Equatable {
    public struct Sample: Sendable, Equatable {
        public var at: Double
        public var processed: Int
        public var failed: Int
        public init(at: Double, processed: Int, failed: Int) {
            self.at = at
            self.processed = processed
            self.failed = failed
        }
    }

    public private(set) var samples: [Sample] = []
    /// How far back the rate looks.
    public let span: Double

    public init(span: Double = 60) { self.span = span }

    /// Adds a sample; keeps the newest one at least `span` old as the window's start, drops older ones.
    public mutating func add(_ sample: Sample) {
        // A reset (`Stats#reset`) or another Redis: start over rather than report a negative rate.
        if let last = samples.last, sample.processed < last.processed || sample.failed < last.failed || sample.at <= last.at {
            samples.removeAll()
        }
        samples.append(sample)
        while samples.count > 2, samples[1].at <= sample.at - span { samples.removeFirst() }
    }

    /// The counters' growth over the window, scaled to one minute; nil before two samples.
    public var rates: Rates? {
        guard let first = samples.first, let last = samples.last, last.at > first.at else { return nil }
        let seconds = last.at - first.at
        let scale = 60 / seconds
        return Rates(
            processed: Int((Double(last.processed - first.processed) * scale).rounded()),
            failed: Int((Double(last.failed - first.failed) * scale).rounded()), window: seconds, source: .counters,
            note: "stat:processed growth over the last \(Int(seconds.rounded())) s, per minute")
    }
}
