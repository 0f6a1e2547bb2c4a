// The dispatcher's JobSource over Redis: one exchange script call records
// the completions and fetches the next jobs (reliable fetch, RPOPLPUSH into
// this process's in-progress lists); reconcile after a lost reply.
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

    /// `identity` (`hostname:pid:nonce`) names this process's in-progress lists; `worker` is a connection only the dispatcher loop uses.
    public init(worker: RedisWorker, keys: SidekiqKeys, identity: String, plan: QueuePlan, clock: WallClock = .system) {
        self.worker = worker
        self.keys = keys
        self.identity = identity
        self.plan = plan
        self.clock = clock
    }

    /// Applies `request.completions`, then moves up to `maxJobs` jobs (within each queue's allowance, in the plan's
    /// order or by weight) into this process's in-progress lists, in one script call. Called only by the dispatcher loop.
    public func exchange(_ request: ExchangeRequest) async throws -> ExchangeReply {
        let now = clock.now()
        var args: [[UInt8]] = []
        args.reserveCapacity(8 + plan.queues.count * 3 + 1 + request.completions.count * 5)
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
        add(String(request.completions.count))
        for completion in request.completions {
            let (kind, replacement, score) = completion.action.encoded
            add(kind)
            add(completion.job.queue)
            args.append(completion.job.original)
            args.append(replacement)
            add(score)
        }
        let finalArgs = args
        let reply = try await worker.run { connection throws(RedisError) in
            try connection.evaluate(Scripts.exchange, args: finalArgs)
        }
        guard let parts = reply.array, parts.count == 3, let flat = parts[0].array, let empty = parts[1].array else {
            throw RedisError(.unexpectedReply, "exchange script returned \(reply)")
        }
        let fetchedAt = ContinuousClock.now
        var jobs: [FetchedJob] = []
        jobs.reserveCapacity(flat.count / 2)
        var i = 0
        while i + 1 < flat.count {
            if let queue = flat[i].string, let body = flat[i + 1].bytes {
                jobs.append(FetchedJob(queue: queue, original: body, fetchedAt: fetchedAt))
            }
            i += 2
        }
        return ExchangeReply(jobs: jobs, emptyQueues: empty.compactMap(\.string))
    }

    /// Pushes back to the head of their queues the in-progress jobs of this process not in `running`; returns how many.
    public func reconcile(running: [FetchedJob]) async throws -> Int {
        var args: [[UInt8]] = [Array(keys.key("").utf8), Array(identity.utf8)]
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
