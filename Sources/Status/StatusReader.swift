import RedisClient
import SidekiqModel

// Reads one StatusSnapshot from Redis in two pipelined round trips, with
// read-only commands only (status never prunes, writes or deletes: it may be
// pointed at a production Redis). Runs on a RedisWorker, whose own thread
// does the blocking hiredis calls, off Swift's cooperative pool.

/// Reads Sidekiq's keys into a `StatusSnapshot`.
public struct StatusReader: Sendable {
    private let worker: RedisWorker
    private let keys: SidekiqKeys
    private let redisName: String
    private let clock: WallClock
    /// Waiting jobs are read for their tenant from at most this many of each queue's oldest jobs.
    public let tenantSample: Int

    public init(worker: RedisWorker, keys: SidekiqKeys, redisName: String, clock: WallClock = .system, tenantSample: Int = 1000) {
        self.worker = worker
        self.keys = keys
        self.redisName = redisName
        self.clock = clock
        self.tenantSample = tenantSample
    }

    /// One snapshot; its rates come from the last minute's metrics (a `--watch` caller may replace them).
    public func read() async throws(RedisError) -> StatusSnapshot {
        let now = clock.now()
        let day = WallClock.utcDay(now)
        let minute = StatusParsing.previousMinute(now: now)
        let (keys, sample) = (self.keys, tenantSample)
        func cmd(_ parts: [String]) -> [[UInt8]] { parts.map { Array($0.utf8) } }
        let (first, second, queueNames, identities, limiters) = try await worker.run {
            connection throws(RedisError) -> ([RedisReply], [RedisReply], [String], [String], [Limiter]) in
            let first = try connection.pipeline(
                [
                    ["GET", keys.processed], ["GET", keys.failed], ["GET", keys.processed(day: day)], ["GET", keys.failed(day: day)],
                    ["ZCARD", keys.retry], ["ZCARD", keys.schedule], ["ZCARD", keys.dead], ["SMEMBERS", keys.queues],
                    ["SMEMBERS", keys.processes],
                ].map(cmd) + minute.keys.map { cmd(["HGETALL", keys.key($0)]) }
                    + [["HGETALL", keys.periodicJobs], ["HGETALL", keys.periodicLast], ["GET", keys.periodicLeader], ["HGETALL", keys.limiters]]
                    .map(cmd))
            for reply in first { try reply.orThrow("status") }
            let queueNames = (first[7].array ?? []).compactMap(\.string).sorted()
            let identities = (first[8].array ?? []).compactMap(\.string).sorted()
            let declared = first[first.count - 1].array ?? []
            let limiters = stride(from: 0, to: declared.count - 1, by: 2).compactMap { i -> Limiter? in
                guard let name = declared[i].string, let json = declared[i + 1].bytes else { return nil }
                return Limiter(name: name, json: json)
            }.sorted { $0.name < $1.name }
            var commands: [[[UInt8]]] = []
            for queue in queueNames {
                commands.append(cmd(["LLEN", keys.queue(queue)]))
                commands.append(cmd(["LINDEX", keys.queue(queue), "-1"]))
                commands.append(cmd(["LRANGE", keys.queue(queue), String(-sample), "-1"]))
            }
            for identity in identities {
                commands.append(cmd(["HMGET", keys.process(identity)] + ProcessStatus.hashFields))
                // `:work` (6.4.2+, courier) and `:workers` (≤ 6.4.1, courier): the first that has entries counts.
                commands.append(cmd(["HVALS", keys.work(identity)]))
                commands.append(cmd(["HVALS", keys.workers(identity)]))
            }
            for limiter in limiters { commands.append(cmd(LimiterStatus.usedCommand(limiter, keys: keys, now: now))) }
            let second = commands.isEmpty ? [] : try connection.pipeline(commands)
            for reply in second { try reply.orThrow("status") }
            return (first, second, queueNames, identities, limiters)
        }

        var snapshot = StatusSnapshot(
            takenAt: now, redis: redisName, namespace: keys.namespace, processed: first[0].int ?? 0, failed: first[1].int ?? 0,
            processedToday: first[2].int ?? 0, failedToday: first[3].int ?? 0, retry: first[4].int ?? 0, scheduled: first[5].int ?? 0,
            dead: first[6].int ?? 0)
        var busyByTenant: [String: Int] = [:]
        var waitingByTenant: [String: Int] = [:]
        var index = 0
        for queue in queueNames {
            let depth = second[index].int ?? 0
            snapshot.queues.append(QueueStatus(name: queue, depth: depth, latency: StatusParsing.latency(oldest: second[index + 1].bytes, now: now)))
            if depth > sample { snapshot.tenantsSampled = true }
            for job in (second[index + 2].array ?? []).compactMap(\.bytes) {
                waitingByTenant[StatusParsing.tenant(ofJob: job) ?? "", default: 0] += 1
            }
            index += 3
        }
        for identity in identities {
            let fields = (second[index].array ?? []).map { $0.isNull ? nil : $0.string }
            if let process = ProcessStatus(identity: identity, fields: fields) {
                snapshot.processes.append(process)
                let work = (second[index + 1].array ?? []).compactMap(\.bytes)
                let entries = work.isEmpty ? (second[index + 2].array ?? []).compactMap(\.bytes) : work
                for entry in entries { busyByTenant[StatusParsing.tenant(ofWork: entry) ?? "", default: 0] += 1 }
            }
            index += 3
        }
        for limiter in limiters {
            snapshot.limiters.append(LimiterStatus(limiter: limiter, used: second[index].int ?? second[index].string.flatMap { Int($0) } ?? 0))
            index += 1
        }
        snapshot.tenants = Self.tenants(busy: busyByTenant, waiting: waitingByTenant)
        if snapshot.tenants.isEmpty { snapshot.tenantsSampled = false }

        var metricFields: [(String, String)] = []
        var metricsFound = false
        let periodicAt = 9 + minute.keys.count
        func pairs(_ reply: RedisReply) -> [(String, [UInt8])] {
            let items = reply.array ?? []
            return stride(from: 0, to: items.count - 1, by: 2).compactMap { i in
                guard let k = items[i].string, let v = items[i + 1].bytes else { return nil }
                return (k, v)
            }
        }
        let lastTicks = Dictionary(pairs(first[periodicAt + 1]).map { ($0.0, Int(String(decoding: $0.1, as: UTF8.self))) }) { $1 }
        snapshot.periodic = pairs(first[periodicAt]).compactMap { PeriodicStatus(name: $0.0, json: $0.1, lastTick: lastTicks[$0.0] ?? nil) }
            .sorted { $0.name < $1.name }
        snapshot.periodicLeader = first[periodicAt + 2].string
        for reply in first[9..<periodicAt] {
            let flat = (reply.array ?? []).compactMap(\.string)
            metricsFound = metricsFound || !flat.isEmpty
            for pair in stride(from: 0, to: flat.count - 1, by: 2) { metricFields.append((flat[pair], flat[pair + 1])) }
        }
        snapshot.rates = StatusParsing.minuteRates(
            totals: StatusParsing.minuteTotals(metricFields), keyExists: metricsFound, processes: snapshot.processes, minuteStart: minute.start)
        return snapshot
    }

    /// Tenants by name (jobs without one as `-`), only when at least one job names a tenant.
    static func tenants(busy: [String: Int], waiting: [String: Int]) -> [TenantStatus] {
        let names = Set(busy.keys).union(waiting.keys)
        guard names.contains(where: { !$0.isEmpty }) else { return [] }
        return names.sorted { ($0.isEmpty ? 1 : 0, $0) < ($1.isEmpty ? 1 : 0, $1) }.map {
            TenantStatus(name: $0.isEmpty ? "-" : $0, busy: busy[$0] ?? 0, waiting: waiting[$0] ?? 0)
        }
    }
}
