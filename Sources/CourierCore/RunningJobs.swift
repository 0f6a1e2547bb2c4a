import SidekiqModel
import Synchronization

/// A job between fetch and acknowledgement.
struct RunningJob: Sendable {
    enum Phase: Sendable { case executing, finished, abandoned }
    let job: FetchedJob
    /// The job parsed once at fetch (nil if it is not JSON).
    let payload: JobPayload?
    let jid: String
    let jobClass: String
    /// `wrapped`, else `class`: the name Sidekiq 7's execution metrics use.
    let metricsClass: String
    let attempt: Int
    let tenant: String?
    /// Wall-clock start (epoch seconds) for the Web UI's "started" column.
    let startedAtWall: Double
    let startedAt: ContinuousClock.Instant
    var phase: Phase
    /// A cancel by jid was sent for this delivery (`courier:cancel`).
    var cancelRequested = false
}

/// What the heartbeat publishes about one busy job.
public struct BusyJob: Sendable {
    public let id: UInt64
    public let queue: String
    public let payload: [UInt8]
    public let runAt: Int
}

/// Every job this process holds, by id. Shared between the dispatcher loop
/// (which owns the lifecycle of entries) and the heartbeat (which reads).
final class RunningJobs: Sendable {
    private let table = Mutex<[UInt64: RunningJob]>([:])

    func insert(_ id: UInt64, _ job: RunningJob) { table.withLock { $0[id] = job } }
    func remove(_ id: UInt64) { table.withLock { _ = $0.removeValue(forKey: id) } }
    func get(_ id: UInt64) -> RunningJob? { table.withLock { $0[id] } }
    func setPhase(_ id: UInt64, _ phase: RunningJob.Phase) { table.withLock { $0[id]?.phase = phase } }

    var count: Int { table.withLock { $0.count } }

    func countByQueue() -> [String: Int] {
        table.withLock { t in t.values.reduce(into: [:]) { $0[$1.job.queue, default: 0] += 1 } }
    }

    /// Jobs still executing (what the Web UI shows as busy).
    func executing() -> [BusyJob] {
        table.withLock { t in
            t.compactMap { id, r in
                r.phase == .executing ? BusyJob(id: id, queue: r.job.queue, payload: r.job.original, runAt: Int(r.startedAtWall)) : nil
            }
        }
    }

    func executingIDs() -> [UInt64] {
        table.withLock { t in t.compactMap { $0.value.phase == .executing ? $0.key : nil } }
    }

    /// Marks the executing jobs with one of these jids that were not marked yet; returns them.
    func markCancelRequested(_ jids: Set<String>) -> [RunningJob] {
        table.withLock { t in
            var marked: [RunningJob] = []
            for (id, entry) in t where entry.phase == .executing && !entry.cancelRequested && !entry.jid.isEmpty && jids.contains(entry.jid) {
                t[id]!.cancelRequested = true
                marked.append(t[id]!)
            }
            return marked
        }
    }

    /// Every job still in this process's in-progress lists.
    func allJobs() -> [FetchedJob] { table.withLock { $0.values.map(\.job) } }
}
