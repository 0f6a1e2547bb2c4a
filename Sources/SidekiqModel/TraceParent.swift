// W3C Trace Context's `traceparent` carried in a job payload (a Sidekiq
// client middleware adds it at enqueue), checked before courier passes it to
// the executor: `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, with a trace id and
// a parent id that are not all zeros (W3C's rules for version 00). Anything
// else is dropped, so a malformed value never reaches a tracer.

public enum TraceParent {
    /// True for a valid version-00 `traceparent`.
    public static func isValid(_ value: String) -> Bool {
        let bytes = value.utf8
        guard bytes.count == 55 else { return false }
        var traceZero = true
        var parentZero = true
        for (i, b) in bytes.enumerated() {
            switch i {
            case 2, 35, 52:
                guard b == UInt8(ascii: "-") else { return false }
            case 0, 1:
                guard b == UInt8(ascii: "0") else { return false }
            default:
                let hex = (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66)
                guard hex else { return false }
                if b != UInt8(ascii: "0") {
                    if (3..<35).contains(i) { traceZero = false } else if (36..<52).contains(i) { parentZero = false }
                }
            }
        }
        return !traceZero && !parentZero
    }

    /// The trace id (32 hex) of a valid `traceparent`, for log lines.
    public static func traceID(_ value: String) -> Substring {
        let start = value.index(value.startIndex, offsetBy: 3)
        return value[start..<value.index(start, offsetBy: 32)]
    }
}
