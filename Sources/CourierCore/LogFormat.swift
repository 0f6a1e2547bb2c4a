import Glibc
import Logging
import SidekiqModel

/// One line per event, as `key=value` text or as a JSON object, to stdout.
public struct CourierLogHandler: LogHandler {
    public enum Format: String, Sendable { case text, json }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let format: Format
    private let label: String

    public init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let timestamp = Self.timestamp()
        var line: String
        switch format {
        case .json:
            line = "{\"ts\":\"\(timestamp)\",\"level\":\"\(event.level)\",\"msg\":\(JSONWriter.string(event.message.description))"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                line += ",\(JSONWriter.string(key)):\(JSONWriter.string("\(value)"))"
            }
            line += "}\n"
        case .text:
            line = "\(timestamp) pid=\(getpid()) \(event.level.rawValue.uppercased()): \(event.message)"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                let text = "\(value)"
                line += text.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" }) ? " \(key)=\(JSONWriter.string(text))" : " \(key)=\(text)"
            }
            line += "\n"
        }
        // One write(2) per line: lines from many threads never interleave.
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
    }

    /// ISO-8601 UTC with milliseconds, like Sidekiq's log lines.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int32, _ width: Int = 2) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1))-\(pad(parts.tm_mday))T\(pad(parts.tm_hour)):\(pad(parts.tm_min)):\(pad(parts.tm_sec)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}
