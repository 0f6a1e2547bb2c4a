// Wall-clock time as Sidekiq stores it (float epoch seconds), injected so
// the decisions that write it are tested at a fixed time.
import Glibc

/// Wall-clock time as Sidekiq stores it: float epoch seconds. Injected, so
/// tests can pin "now".
public struct WallClock: Sendable {
    /// Returns the current time in epoch seconds.
    public let now: @Sendable () -> Double

    /// A clock that reads `now`; tests pass a fixed or stepped time.
    public init(now: @escaping @Sendable () -> Double) { self.now = now }

    /// `CLOCK_REALTIME` in epoch seconds.
    public static let system = WallClock {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// `YYYY-MM-DD` of an epoch time in UTC (Sidekiq's daily stat keys).
    public static func utcDay(_ epoch: Double) -> String {
        var seconds = time_t(epoch)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))"
    }
}
