// Bounded label values, so a tenant-per-customer app (or an app with
// thousands of job classes) cannot blow up Prometheus: an allow-list, or the
// first N distinct values seen; everything else is counted as `other`. A
// value without I/O, owned by CourierMetrics under its lock; tests drive it.

/// How many values of a label get their own series.
public enum LabelBoundRule: Sendable, Equatable {
    /// Only these values (`--metrics-tenants`); any other is `other`.
    case allow(Set<String>)
    /// The first `limit` distinct values seen since start (`--metrics-tenant-limit`); later ones are `other`.
    case firstSeen(limit: Int)
}

/// Maps a label's values to at most a bounded set of series.
public struct LabelBound: Sendable {
    /// The value every value past the bound is counted as.
    public static let other = "other"

    public let rule: LabelBoundRule
    private var seen: Set<String> = []

    public init(_ rule: LabelBoundRule) { self.rule = rule }

    /// The label to count `value` under: itself, or `other`. Allocates only the first time a value is let in.
    public mutating func label(_ value: String) -> String {
        switch rule {
        case let .allow(allowed):
            return allowed.contains(value) ? value : Self.other
        case let .firstSeen(limit):
            if seen.contains(value) { return value }
            guard seen.count < limit else { return Self.other }
            seen.insert(value)
            return value
        }
    }
}
