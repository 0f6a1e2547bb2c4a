// Whether Ruby's JSON parser (what Sidekiq's API and Web UI read payloads
// with) accepts a payload courier's own reader accepted: Ruby refuses nesting
// deeper than 100 and a \u escape of a lone UTF-16 surrogate. Such a job still
// runs its course (the executor refuses it; it goes to the dead set with the
// reason), but it must not appear in a process's work entries (the dispatcher's
// busyJobs leaves it out), where the Web
// UI's Busy page would fail on it (Sidekiq never lists a job it cannot parse).

public enum RubyJSONCheck {
    /// Ruby's `JSON.parse` default `max_nesting`.
    public static let maxNesting = 100

    /// False when `raw` nests deeper than `maxNesting` or has a lone surrogate escape.
    /// A byte scan, no allocation; meant for JSON courier's reader already accepted.
    public static func rubyReadable(_ raw: [UInt8]) -> Bool {
        var depth = 0
        var inString = false
        var i = 0
        let n = raw.count
        while i < n {
            let b = raw[i]
            if inString {
                if b == UInt8(ascii: "\"") {
                    inString = false
                } else if b == UInt8(ascii: "\\"), i + 1 < n {
                    if raw[i + 1] == UInt8(ascii: "u"), let unit = hex4(raw, i + 2) {
                        if (0xD800..<0xDC00).contains(unit) {
                            // A high surrogate must be followed by a low one.
                            guard i + 11 < n, raw[i + 6] == UInt8(ascii: "\\"), raw[i + 7] == UInt8(ascii: "u"),
                                let low = hex4(raw, i + 8), (0xDC00..<0xE000).contains(low)
                            else { return false }
                            i += 12
                            continue
                        }
                        if (0xDC00..<0xE000).contains(unit) { return false }
                        i += 6
                        continue
                    }
                    i += 2
                    continue
                }
            } else if b == UInt8(ascii: "\"") {
                inString = true
            } else if b == UInt8(ascii: "[") || b == UInt8(ascii: "{") {
                depth += 1
                if depth > maxNesting { return false }
            } else if b == UInt8(ascii: "]") || b == UInt8(ascii: "}") {
                depth -= 1
            }
            i += 1
        }
        return true
    }

    private static func hex4(_ raw: [UInt8], _ at: Int) -> Int? {
        guard at + 4 <= raw.count, raw[at..<at + 4].allSatisfy(isHex) else { return nil }
        return raw[at..<at + 4].reduce(0) { $0 << 4 | Int(hexValue($1)) }
    }
}
