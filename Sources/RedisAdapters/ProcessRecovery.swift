import JobDispatch
import RedisClient
import SidekiqModel

// Reliable fetch's other half: the jobs of courier processes that died (their
// heartbeat expired) go back to their queues, and a job recovered too often
// is handed back as a poison pill; at a clean exit this process unregisters
// and counts what it leaves behind. Both are single Lua scripts (Scripts.swift).

/// What one recovery pass found.
public struct RecoveryResult: Sendable {
    /// Jobs pushed back to their queues.
    public var recovered: Int
    /// Jobs recovered more than the limit allows, as (queue, raw payload), now in this process's in-progress lists.
    public var poisonPills: [FetchedJob]
    /// Identities of the dead processes whose lists were emptied.
    public var goneProcesses: [String]
}

/// Recovery of dead processes' in-progress jobs and this process's retirement, each one Lua script.
/// Courier runs `recoverOrphans` after its first beat and every 2–4 beats after, and `retire` at exit.
public struct ProcessRecovery: Sendable {
    private let worker: RedisWorker
    private let prefix: String
    private let identity: String
    private let maxRecoveries: Int

    /// `identity` is this process's own (its lists are never recovered by it); a job recovered more than `maxRecoveries`
    /// times (3 by default) within a day is a poison pill.
    public init(worker: RedisWorker, keys: SidekiqKeys, identity: String, maxRecoveries: Int) {
        self.worker = worker
        self.prefix = keys.key("")
        self.identity = identity
        self.maxRecoveries = maxRecoveries
    }

    /// Pushes back the in-progress jobs of processes whose heartbeat expired.
    public func recoverOrphans() async throws -> RecoveryResult {
        let (prefix, me, limit) = (prefix, identity, maxRecoveries)
        let reply = try await worker.run { connection throws(RedisError) in
            try connection.evaluate(Scripts.recoverOrphans, args: [prefix, me, String(limit)].map { Array($0.utf8) })
        }
        guard let parts = reply.array, parts.count == 3 else { return RecoveryResult(recovered: 0, poisonPills: [], goneProcesses: []) }
        let pairs = parts[1].array ?? []
        var poison: [FetchedJob] = []
        var i = 0
        while i + 1 < pairs.count {
            if let queue = pairs[i].string, let body = pairs[i + 1].bytes {
                poison.append(FetchedJob(queue: queue, original: body, fetchedAt: .now))
            }
            i += 2
        }
        return RecoveryResult(
            recovered: parts[0].int ?? 0, poisonPills: poison,
            goneProcesses: (parts[2].array ?? []).compactMap(\.string))
    }

    /// Unregisters this process at exit; returns how many jobs it leaves in its in-progress lists.
    public func retire() async throws -> Int {
        let (prefix, me) = (prefix, identity)
        return try await worker.run { connection throws(RedisError) in
            try connection.evaluate(Scripts.retire, args: [Array(prefix.utf8), Array(me.utf8)]).int ?? 0
        }
    }
}
