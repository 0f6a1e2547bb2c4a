// The dispatcher's JobSource over Redis: one exchange script call records
// the completions and fetches the next jobs (reliable fetch, RPOPLPUSH into
// this process's in-progress lists) within the cluster-wide limiters;
// reconcile after a lost reply.
import JobDispatch
import RedisClient
import SidekiqModel

/// `JobSource` over Redis through the exchange and reconcile scripts, on a
/// Redis connection of its own.
public final class RedisJobSource: JobSource {
    private let worker: RedisWorker
    private let keys: SidekiqKeys
    private let identity: String
    private let plan: QueuePlan
    private let clock: WallClock
    /// The limiters as the exchange script reads them (the same every call).
    private let limiterArgs: [[UInt8]]

    /// `identity` (`hostname:pid:nonce`) names this process's in-progress lists; `worker` is a connection only the dispatcher loop uses.
    public init(
        worker: RedisWorker, keys: SidekiqKeys, identity: String, plan: QueuePlan, limiters: Limiters = Limiters(), clock: WallClock = .system
    ) {
        self.worker = worker
        self.keys = keys
        self.identity = identity
        self.plan = plan
        self.clock = clock
        var args: [String] = [String(limiters.all.count)]
        for limiter in limiters.all {
            args += [limiter.name, limiter.kind.rawValue, String(limiter.count), String(limiter.interval), String(limiter.lockTimeout)]
            args += [String(limiter.classes.count)] + limiter.classes + [String(limiter.queues.count)] + limiter.queues
        }
        self.limiterArgs = args.map { Array($0.utf8) }
    }

    /// Applies `request.completions`, then moves up to `maxJobs` jobs (within each queue's allowance, in the plan's
    /// order or by weight) into this process's in-progress lists, in one script call. Called only by the dispatcher loop.
    public func exchange(_ request: ExchangeRequest) async throws -> ExchangeReply {
        let now = clock.now()
        var args: [[UInt8]] = []
        args.reserveCapacity(8 + plan.queues.count * 3 + limiterArgs.count + 1 + request.completions.count * 6)
        func add(_ s: String) { args.append(Array(s.utf8)) }
        add(keys.key(""))
        add(identity)
        add(String(request.maxJobs))
        add(plan.mode.rawValue)
        add(String(Int.random(in: 1..<2_147_483_647)))
        add(WallClock.utcDay(now))
        add(JSONWriter.float(now))
        add(String(plan.queues.count))
        for (name, weight) in plan.effectiveWeights {
            add(name)
            add(String(weight))
            add(String(request.allowances[name] ?? -1))
        }
        args.append(contentsOf: limiterArgs)
        add(String(request.completions.count))
        for completion in request.completions {
            let (kind, replacement, score) = completion.action.encoded
            add(kind)
            add(completion.job.queue)
            args.append(completion.job.original)
            args.append(replacement)
            add(score)
            add(completion.job.lease ?? "")
        }
        let finalArgs = args
        let reply = try await worker.run { connection throws(RedisError) in
            try connection.evaluate(Scripts.exchange, args: finalArgs)
        }
        guard let parts = reply.array, parts.count == 7, let flat = parts[0].array, let empty = parts[1].array, let leases = parts[3].array
        else {
            throw RedisError(.unexpectedReply, "exchange script returned \(reply)")
        }
        let fetchedAt = ContinuousClock.now
        var jobs: [FetchedJob] = []
        jobs.reserveCapacity(flat.count / 2)
        var i = 0
        while i + 1 < flat.count {
            if let queue = flat[i].string, let body = flat[i + 1].bytes {
                let lease = leases.count > i / 2 ? leases[i / 2].string.flatMap { $0.isEmpty ? nil : $0 } : nil
                jobs.append(FetchedJob(queue: queue, original: body, fetchedAt: fetchedAt, lease: lease))
            }
            i += 2
        }
        let recheck = parts[5].int ?? -1
        return ExchangeReply(
            jobs: jobs, emptyQueues: empty.compactMap(\.string),
            limited: LimitedFetch(queues: (parts[4].array ?? []).compactMap(\.string), recheck: recheck >= 0 ? .milliseconds(recheck) : nil),
            deferred: parts[6].int ?? 0)
    }

    /// Pushes back to the head of their queues the in-progress jobs of this process not in `running`; returns how many.
    public func reconcile(running: [FetchedJob]) async throws -> Int {
        let leases = running.compactMap(\.lease)
        var args: [[UInt8]] = [Array(keys.key("").utf8), Array(identity.utf8), Array(String(leases.count).utf8)]
        args += leases.map { Array($0.utf8) }
        for job in running {
            args.append(Array(job.queue.utf8))
            args.append(job.original)
        }
        let finalArgs = args
        let reply = try await worker.run { connection throws(RedisError) in
            try connection.evaluate(Scripts.reconcile, args: finalArgs)
        }
        return reply.int ?? 0
    }
}

extension CompletionAction {
    /// (kind, replacement payload, score) as the exchange script reads them.
    var encoded: (String, [UInt8], String) {
        switch self {
        case .acknowledge: return ("A", [], "0")
        case .acknowledgeFailed: return ("F", [], "0")
        case .requeue: return ("Q", [], "0")
        case .requeueAtShutdown: return ("K", [], "0")
        case let .retry(payload, at): return ("R", payload, JSONWriter.float(at))
        case let .kill(payload, at): return ("D", payload, JSONWriter.float(at))
        case let .bury(at): return ("M", [], JSONWriter.float(at))
        }
    }
}
