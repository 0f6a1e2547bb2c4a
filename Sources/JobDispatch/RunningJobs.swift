import ExecutorProtocol
import SidekiqModel

// Every job this process holds between fetch and acknowledgement, as a value
// the dispatcher core owns (under its lock): entries, their phase, and the
// views the loop and the heartbeat need.

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
    /// By the configured `TenantRule` (logs as found; metrics bound it).
    let tenant: String?
    /// Enqueue → start in seconds (`enqueued_at` to the delivery); nil when never delivered or unknown.
    let latency: Double?
    /// The payload's valid W3C `traceparent`, passed on to the executor.
    let traceparent: String?
    /// Wall-clock start (epoch seconds) for the Web UI's "started" column.
    let startedAtWall: Double
    let startedAt: ContinuousClock.Instant
    var phase: Phase
    /// A cancel by jid was sent for this delivery (`courier:cancel`).
    var cancelRequested = false
}

extension RunningJob {
    /// A job held only until its completion is recorded: it never started (fetched ahead, going back).
    init(unstartedJob job: FetchedJob, startedAtWall: Double, startedAt: ContinuousClock.Instant) {
        self.init(
            job: job, payload: nil, jid: "", jobClass: "unknown", metricsClass: "unknown", attempt: 0, tenant: nil, latency: nil,
            traceparent: nil, startedAtWall: startedAtWall, startedAt: startedAt, phase: .finished)
    }
}

extension ExecutionOutcome {
    /// The job ran in the executor (its time says how long jobs take); false: refused or never reached it.
    var ran: Bool {
        switch self {
        case .succeeded, .failed, .timedOut, .interrupted: true
        case .refused, .executorUnavailable: false
        }
    }
}

/// What the heartbeat publishes about one busy job.
public struct BusyJob: Sendable {
    /// The dispatcher's delivery id; written base-36 as the work entry's field (Sidekiq's thread id).
    public let id: UInt64
    /// Queue name without the `queue:` prefix.
    public let queue: String
    /// The job's bytes exactly as fetched; the work entry's `payload` string.
    public let payload: [UInt8]
    /// When the delivery started, whole epoch seconds (the work entry's `run_at`).
    public let runAt: Int
}

/// The jobs held, by id.
struct RunningJobs: Sendable {
    private var table: [UInt64: RunningJob] = [:]

    subscript(id: UInt64) -> RunningJob? { table[id] }
    mutating func insert(_ id: UInt64, _ job: RunningJob) { table[id] = job }
    mutating func remove(_ id: UInt64) { table[id] = nil }
    mutating func setPhase(_ id: UInt64, _ phase: RunningJob.Phase) { table[id]?.phase = phase }

    var count: Int { table.count }
    var isEmpty: Bool { table.isEmpty }

    func countByQueue() -> [String: Int] { table.values.reduce(into: [:]) { $0[$1.job.queue, default: 0] += 1 } }

    /// Jobs still executing (what the Web UI shows as busy).
    func executing() -> [BusyJob] {
        table.compactMap { id, r in
            r.phase == .executing ? BusyJob(id: id, queue: r.job.queue, payload: r.job.original, runAt: Int(r.startedAtWall)) : nil
        }
    }

    /// Ids of the jobs still executing, oldest first (ids grow).
    func executingIDs() -> [UInt64] { table.compactMap { $0.value.phase == .executing ? $0.key : nil }.sorted() }

    /// Marks the executing jobs with one of these jids that were not marked yet; returns them.
    mutating func markCancelRequested(_ jids: Set<String>) -> [RunningJob] {
        var marked: [RunningJob] = []
        for (id, entry) in table where entry.phase == .executing && !entry.cancelRequested && !entry.jid.isEmpty && jids.contains(entry.jid) {
            table[id]!.cancelRequested = true
            marked.append(table[id]!)
        }
        return marked
    }

    /// Every job still in this process's in-progress lists.
    func allJobs() -> [FetchedJob] { table.values.map(\.job) }
}
