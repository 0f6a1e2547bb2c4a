import Glibc
import SidekiqModel
import Synchronization

// Sidekiq 7's per-class execution metrics, which the Web UI's Metrics tab
// reads (`Sidekiq::Metrics::Query`). Counted in memory as jobs finish — one
// lock and a dictionary update in place, no Redis work per job — and written
// with each heartbeat in the layout Sidekiq 7.3 writes (metrics/tracking.rb,
// metrics/shared.rb):
//
//   HINCRBY j|<%Y%m%d>|<%-H>:<%-M>  CLASS|p CLASS|f CLASS|ms, EXPIRE 8 h
//   BITFIELD CLASS-<%d>-<%H>:<%-M> OVERFLOW SAT INCRBY u16 #i n …, EXPIRE 8 h
//
// in UTC, where CLASS is the payload's `wrapped`, else its `class`. `p` counts
// every job that ran, `f` those that raised (or timed out), `ms` and the
// histogram only successful ones (Sidekiq leaves failures' times out).

/// Key names and histogram buckets of Sidekiq 7.3's metrics, as pure functions.
package enum SidekiqMetricsLayout {
    /// Upper bounds (exclusive, ms) of the histogram's 26 buckets; the last one catches everything.
    package static let bucketBounds: [Double] = [
        20, 30, 45, 65, 100, 150, 225, 335, 500, 750, 1100, 1700, 2500, 3800, 5750,
        8500, 13000, 20000, 30000, 45000, 65000, 100_000, 150_000, 225_000, 335_000, 1e20,
    ]
    /// Both the minute hash and the histograms expire after 8 hours.
    package static let ttlSeconds = 8 * 60 * 60

    /// The first bucket whose bound is above `milliseconds`.
    package static func bucket(milliseconds: Int) -> Int {
        let ms = Double(milliseconds)
        for (i, bound) in bucketBounds.enumerated() where ms < bound { return i }
        return bucketBounds.count - 1
    }

    /// `j|20261201|9:5`: date, hour and minute of the UTC minute, hour and minute unpadded.
    package static func minuteKey(epoch: Double) -> String {
        let t = UTCParts(epoch)
        return "j|\(t.year)\(two(t.month))\(two(t.day))|\(t.hour):\(t.minute)"
    }

    /// `CLASS-01-09:5`: day of month and hour zero-padded, minute not (strftime `%d-%H:%-M`).
    package static func histogramKey(jobClass: String, epoch: Double) -> String {
        let t = UTCParts(epoch)
        return "\(jobClass)-\(two(t.day))-\(two(t.hour)):\(t.minute)"
    }

    private static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

    private struct UTCParts {
        var year, month, day, hour, minute: Int
        init(_ epoch: Double) {
            var seconds = time_t(epoch.rounded(.down))
            var parts = tm()
            gmtime_r(&seconds, &parts)
            year = Int(parts.tm_year) + 1900
            month = Int(parts.tm_mon) + 1
            day = Int(parts.tm_mday)
            hour = Int(parts.tm_hour)
            minute = Int(parts.tm_min)
        }
    }
}

/// One class's counts since the last flush.
package struct ClassExecutionCounts: Equatable {
    package var processed = 0
    package var failed = 0
    /// Milliseconds of the successful executions.
    package var milliseconds = 0
    /// Successful executions per histogram bucket.
    package var buckets = [Int](repeating: 0, count: SidekiqMetricsLayout.bucketBounds.count)

    package mutating func add(_ other: ClassExecutionCounts) {
        processed += other.processed
        failed += other.failed
        milliseconds += other.milliseconds
        for i in buckets.indices { buckets[i] += other.buckets[i] }
    }
}

/// What one flush writes: counts by metrics class.
package struct ExecutionMetricsSnapshot: Equatable {
    package var classes: [String: ClassExecutionCounts] = [:]
    package var isEmpty: Bool { classes.isEmpty }

    package init(classes: [String: ClassExecutionCounts] = [:]) { self.classes = classes }

    /// The Redis commands that add this snapshot to Sidekiq's keys for the minute of `now`.
    package func commands(now: Double, keys: SidekiqKeys) -> [[String]] {
        guard !classes.isEmpty else { return [] }
        let hash = keys.key(SidekiqMetricsLayout.minuteKey(epoch: now))
        let ttl = String(SidekiqMetricsLayout.ttlSeconds)
        var out: [[String]] = []
        for (jobClass, counts) in classes.sorted(by: { $0.key < $1.key }) {
            // Sidekiq's hash only holds fields that were incremented; a 0 is never written.
            for (field, n) in [("p", counts.processed), ("f", counts.failed), ("ms", counts.milliseconds)] where n > 0 {
                out.append(["HINCRBY", hash, "\(jobClass)|\(field)", String(n)])
            }
            var bitfield = ["BITFIELD", keys.key(SidekiqMetricsLayout.histogramKey(jobClass: jobClass, epoch: now)), "OVERFLOW", "SAT"]
            for (i, n) in counts.buckets.enumerated() where n > 0 {
                bitfield += ["INCRBY", "u16", "#\(i)", String(n)]
            }
            if bitfield.count > 4 {
                out.append(bitfield)
                out.append(["EXPIRE", bitfield[1], ttl])
            }
        }
        out.append(["EXPIRE", hash, ttl])
        return out
    }
}

/// The in-memory counts between heartbeats, shared by the dispatcher (which
/// counts) and the heartbeat (which takes and writes them).
public final class ExecutionMetrics: Sendable {
    private let state = Mutex(ExecutionMetricsSnapshot())

    public init() {}

    /// A job that ran and returned, after `milliseconds`.
    package func succeeded(jobClass: String, milliseconds: Int) {
        let ms = max(0, milliseconds)
        let bucket = SidekiqMetricsLayout.bucket(milliseconds: ms)
        state.withLock { s in
            // Updated in place: no copy of the bucket array after a class's first job.
            s.classes[jobClass, default: ClassExecutionCounts()].recordSuccess(milliseconds: ms, bucket: bucket)
        }
    }

    /// A job that ran and raised (or did not answer in time).
    package func failed(jobClass: String) {
        state.withLock { s in s.classes[jobClass, default: ClassExecutionCounts()].recordFailure() }
    }

    /// Everything counted since the last take; the counts start again from zero.
    package func take() -> ExecutionMetricsSnapshot {
        state.withLock { s in
            defer { s = ExecutionMetricsSnapshot() }
            return s
        }
    }

    /// Puts back counts whose write failed, so the next flush carries them.
    package func restore(_ snapshot: ExecutionMetricsSnapshot) {
        guard !snapshot.isEmpty else { return }
        state.withLock { s in
            for (jobClass, counts) in snapshot.classes { s.classes[jobClass, default: ClassExecutionCounts()].add(counts) }
        }
    }
}

extension ClassExecutionCounts {
    package mutating func recordSuccess(milliseconds: Int, bucket: Int) {
        processed += 1
        self.milliseconds += milliseconds
        buckets[bucket] += 1
    }

    package mutating func recordFailure() {
        processed += 1
        failed += 1
    }
}
