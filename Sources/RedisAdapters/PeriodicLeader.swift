import Logging
import RedisClient
import SidekiqModel

// Periodic jobs in Redis: the leader lease (one courier enqueues ticks) and
// the enqueue of a tick, which is "SET tick NX, then SADD queues + LPUSH" in
// one script. The lease keeps the work in one place; the tick key is what makes
// a tick enqueued once even when two couriers both believe they lead (a
// takeover while the old leader was paused, clocks apart).

enum PeriodicScripts {
    /// ARGV: leader key, identity, ttl ms. Returns {1 if held by identity now, holder or ''}.
    static let lease = RedisScript(
        name: "courier-periodic-lease",
        source: #"""
            local holder = redis.call('GET', ARGV[1])
            if holder == ARGV[2] then
              redis.call('PEXPIRE', ARGV[1], ARGV[3])
              return {1, holder}
            elseif not holder then
              redis.call('SET', ARGV[1], ARGV[2], 'PX', ARGV[3])
              return {1, ARGV[2]}
            end
            return {0, holder}
            """#)

    /// ARGV: prefix, identity, then groups of (name, epoch, ttl, queue, jid, payload).
    /// Returns the ticks enqueued, or -1 when identity no longer holds the lease (nothing written).
    static let enqueue = RedisScript(
        name: "courier-periodic-enqueue",
        source: #"""
            local prefix, identity = ARGV[1], ARGV[2]
            if redis.call('GET', prefix .. 'courier:periodic:leader') ~= identity then return -1 end
            local enqueued = 0
            local lastKey = prefix .. 'courier:periodic:last'
            for i = 3, #ARGV, 6 do
              local name, epoch, ttl, queue, jid, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
              if redis.call('SET', prefix .. 'courier:periodic:tick:' .. name .. ':' .. epoch, jid, 'NX', 'EX', ttl) then
                redis.call('SADD', prefix .. 'queues', queue)
                redis.call('LPUSH', prefix .. 'queue:' .. queue, payload)
                enqueued = enqueued + 1
              end
              local last = tonumber(redis.call('HGET', lastKey, name) or '0')
              if tonumber(epoch) > last then redis.call('HSET', lastKey, name, epoch) end
            end
            return enqueued
            """#)

    /// ARGV: leader key, identity. Deletes the lease only if identity holds it.
    static let release = RedisScript(
        name: "courier-periodic-release",
        source: #"""
            if redis.call('GET', ARGV[1]) == ARGV[2] then return redis.call('DEL', ARGV[1]) end
            return 0
            """#)
}

/// One tick to enqueue: the job, its scheduled time (epoch seconds) and the payload made for it.
public struct PeriodicTick: Sendable {
    public let job: PeriodicJob
    public let epoch: Int
    public let jid: String
    public let payload: [UInt8]

    public init(job: PeriodicJob, epoch: Int, now: Double, jid: String = PeriodicJob.newJID()) {
        self.job = job
        self.epoch = epoch
        self.jid = jid
        self.payload = job.payload(jid: jid, now: now)
    }
}

/// The Redis side of periodic jobs for one courier process (see docs/periodic-jobs.md).
public final class PeriodicLeader: Sendable {
    private let worker: RedisWorker
    private let keys: SidekiqKeys
    private let identity: String
    private let leaseMillis: Int

    /// `worker` is a connection of its own, so a lease renewal never waits behind a slow call.
    public init(worker: RedisWorker, keys: SidekiqKeys, identity: String, lease: Duration) {
        self.worker = worker
        self.keys = keys
        self.identity = identity
        leaseMillis = Int(lease.components.seconds) * 1000 + Int(lease.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Takes the lease if it is free, renews it if this process holds it; returns whether it does and who holds it.
    public func acquire() async throws(RedisError) -> (leader: Bool, holder: String?) {
        let (key, me, ttl) = (keys.periodicLeader, identity, String(leaseMillis))
        let reply = try await worker.run { connection throws(RedisError) in
            try connection.evaluate(PeriodicScripts.lease, args: [Array(key.utf8), Array(me.utf8), Array(ttl.utf8)])
        }
        let parts = reply.array ?? []
        return (parts.first?.int == 1, parts.count > 1 ? parts[1].string : nil)
    }

    /// Enqueues the ticks not enqueued yet; returns how many were, or nil when the lease was lost first.
    public func enqueue(_ ticks: [PeriodicTick]) async throws(RedisError) -> Int? {
        guard !ticks.isEmpty else { return 0 }
        var args: [[UInt8]] = [Array(keys.key("").utf8), Array(identity.utf8)]
        for tick in ticks {
            args += [
                Array(tick.job.name.utf8), Array(String(tick.epoch).utf8), Array(String(tick.job.tickKeyTTL).utf8),
                Array(tick.job.queue.utf8), Array(tick.jid.utf8), tick.payload,
            ]
        }
        let finalArgs = args
        let n = try await worker.run { connection throws(RedisError) in
            try connection.evaluate(PeriodicScripts.enqueue, args: finalArgs).int ?? 0
        }
        return n < 0 ? nil : n
    }

    /// The latest tick enqueued per job name (from any leader), to count what a leader change skipped.
    public func lastTicks() async throws(RedisError) -> [String: Int] {
        let key = keys.periodicLast
        let reply = try await worker.run { connection throws(RedisError) in try connection.command(["HGETALL", key]).orThrow("HGETALL \(key)") }
        let items = reply.array ?? []
        var out: [String: Int] = [:]
        for i in stride(from: 0, to: items.count - 1, by: 2) {
            if let name = items[i].string, let epoch = items[i + 1].string.flatMap({ Int($0) }) { out[name] = epoch }
        }
        return out
    }

    /// Writes the jobs' declarations and next runs for `courier status` (replacing what an earlier leader wrote).
    public func publish(_ jobs: [PeriodicJob], now: Int) async throws(RedisError) {
        let key = keys.periodicJobs
        var hset = ["HSET", key]
        for job in jobs {
            let next = job.schedule.next(after: now).map(String.init) ?? "null"
            hset += [
                job.name,
                #"{"cron":\#(JSONWriter.string(job.schedule.expression.source)),"tz":\#(JSONWriter.string(job.schedule.zone.name)),"#
                    + #""class":\#(JSONWriter.string(job.jobClass)),"queue":\#(JSONWriter.string(job.queue)),"next":\#(next),"#
                    + #""leader":\#(JSONWriter.string(identity)),"at":\#(now)}"#,
            ]
        }
        let commands = [["MULTI"], ["DEL", key], hset, ["EXEC"]].map { $0.map { Array($0.utf8) } }
        _ = try await worker.run { connection throws(RedisError) in try connection.pipeline(commands) }
    }

    /// Gives the lease up at quiet or stop, so a survivor leads at its next pass instead of after the expiry.
    public func release() async throws(RedisError) {
        let (key, me) = (keys.periodicLeader, identity)
        _ = try await worker.run { connection throws(RedisError) in
            try connection.evaluate(PeriodicScripts.release, args: [Array(key.utf8), Array(me.utf8)])
        }
    }
}
