import Glibc
import Logging
import SidekiqModel

/// One line per event, as `key=value` text or as a JSON object, to stdout (through a `LogSink`).
public struct CourierLogHandler: LogHandler {
    public enum Format: String, Sendable { case text, json }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let format: Format
    private let label: String
    private let sink: LogSink

    public init(label: String, format: Format, level: Logger.Level, sink: LogSink = .standardOutput) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = event.metadata ?? [:]
        if !metadata.isEmpty { merged.merge(metadata) { event, _ in event } }  // the event's own values win
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch format {
        case .json:
            line += #"{"ts":""#.utf8
            Self.appendTimestamp(to: &line)
            line += #"","level":""#.utf8
            line += event.level.rawValue.utf8
            line += #"","msg":"#.utf8
            line += JSONWriter.string(event.message.description).utf8
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                line.append(UInt8(ascii: ","))
                line += JSONWriter.string(key).utf8
                line.append(UInt8(ascii: ":"))
                line += JSONWriter.string(Self.text(value)).utf8
            }
            line += "}\n".utf8
        case .text:
            Self.appendTimestamp(to: &line)
            line += " pid=".utf8
            line += Self.pid.utf8
            line.append(UInt8(ascii: " "))
            line += Self.upperLevel(event.level).utf8
            line += ": ".utf8
            let message = event.message.description
            // One event, one line: a message with control characters is quoted and escaped.
            if message.utf8.contains(where: { $0 < 0x20 }) { line += JSONWriter.string(message).utf8 } else { line += message.utf8 }
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
                let text = Self.text(value)
                line.append(UInt8(ascii: " "))
                line += key.utf8
                line.append(UInt8(ascii: "="))
                // Quoted when it would not read back as one token: spaces, quotes, '=', '\\', control characters.
                if text.utf8.contains(where: { $0 <= 32 || $0 == 34 || $0 == 61 || $0 == 92 }) {
                    line += JSONWriter.string(text).utf8
                } else {
                    line += text.utf8
                }
            }
            line.append(10)
        }
        line.withUnsafeBytes { sink.write($0, urgent: event.level > .info) }
    }

    private static let pid = String(getpid())

    private static func upperLevel(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    /// A metadata value as text; plain strings without an interpolation round trip.
    private static func text(_ value: Logger.MetadataValue) -> String {
        if case let .string(s) = value { return s }
        return value.description
    }

    /// ISO-8601 UTC with milliseconds, like Sidekiq's log lines.
    static func appendTimestamp(to out: inout [UInt8]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var seconds = ts.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ n: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var n = n
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(n / divisor % 10))
                n %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, 2); out.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), 2); out.append(UInt8(ascii: "T"))
        digits(Int(parts.tm_hour), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), 2); out.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), 2); out.append(UInt8(ascii: "."))
        digits(ts.tv_nsec / 1_000_000, 3); out.append(UInt8(ascii: "Z"))
    }
}
