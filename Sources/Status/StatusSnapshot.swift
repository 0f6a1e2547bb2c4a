import SidekiqModel

// What `courier status` shows, as a value: built from Redis by StatusReader,
// rendered by StatusRendering, and testable without either. Everything in it
// comes from Sidekiq's own keys, so it describes any Redis holding Sidekiq
// data — courier processes add their breaker, held jobs and executor through
// the process hash's `courier` field (Heartbeat.swift).

/// One look at a Redis holding Sidekiq data.
public struct StatusSnapshot: Sendable, Equatable {
    /// When it was read (epoch seconds, the injected clock).
    public var takenAt: Double
    /// The Redis URL, password masked.
    public var redis: String
    /// The redis-namespace prefix, if any.
    public var namespace: String?
    /// `stat:processed` / `stat:failed`: every job since the counters were last reset.
    public var processed: Int
    public var failed: Int
    /// `stat:processed:<UTC day>` / `stat:failed:<UTC day>`.
    public var processedToday: Int
    public var failedToday: Int
    /// `ZCARD retry`, `schedule`, `dead`.
    public var retry: Int
    public var scheduled: Int
    public var dead: Int
    /// Every queue in `queues`, by name.
    public var queues: [QueueStatus]
    /// Every live process in `processes` whose hash has `info` (what `Sidekiq::ProcessSet` lists), by identity.
    public var processes: [ProcessStatus]
    /// Jobs processed and failed over the last minute, when some source has them.
    public var rates: Rates
    /// Busy and waiting jobs per tenant (the payload's `tenant`, else its first tag); empty when no job has one.
    public var tenants: [TenantStatus]
    /// Waiting jobs per tenant were counted from the oldest `tenantSample` jobs of each queue only.
    public var tenantsSampled: Bool
    /// Periodic jobs as their leader last published them (`courier:periodic:jobs`), by name.
    public var periodic: [PeriodicStatus] = []
    /// The periodic leader lease's holder, or nil when no courier leads.
    public var periodicLeader: String?
    /// Cluster-wide limiters as couriers last published them (`courier:limiters`), by name, with their use now.
    public var limiters: [LimiterStatus] = []

    public init(
        takenAt: Double, redis: String, namespace: String? = nil, processed: Int = 0, failed: Int = 0, processedToday: Int = 0,
        failedToday: Int = 0, retry: Int = 0, scheduled: Int = 0, dead: Int = 0, queues: [QueueStatus] = [], processes: [ProcessStatus] = [],
        rates: Rates = Rates(), tenants: [TenantStatus] = [], tenantsSampled: Bool = false
    ) {
        self.takenAt = takenAt
        self.redis = redis
        self.namespace = namespace
        self.processed = processed
        self.failed = failed
        self.processedToday = processedToday
        self.failedToday = failedToday
        self.retry = retry
        self.scheduled = scheduled
        self.dead = dead
        self.queues = queues
        self.processes = processes
        self.rates = rates
        self.tenants = tenants
        self.tenantsSampled = tenantsSampled
    }

    /// Sum of `busy` over the processes (the Web UI's "Busy").
    public var busy: Int { processes.reduce(0) { $0 + $1.busy } }
    /// Sum of `concurrency` over the processes.
    public var concurrency: Int { processes.reduce(0) { $0 + $1.concurrency } }
    /// Jobs waiting in all queues.
    public var enqueued: Int { queues.reduce(0) { $0 + $1.depth } }
}

/// A queue: `LLEN queue:NAME`, and the age of its oldest job (`enqueued_at` of the list's tail), as Sidekiq's `Queue#latency`.
public struct QueueStatus: Sendable, Equatable {
    public var name: String
    public var depth: Int
    /// Seconds; 0 for an empty queue or a job without `enqueued_at`.
    public var latency: Double

    public init(name: String, depth: Int, latency: Double) {
        self.name = name
        self.depth = depth
        self.latency = latency
    }
}

/// A process from its hash (`info`, `busy`, `beat`, `quiet`, `rss`, `concurrency`, `courier`).
public struct ProcessStatus: Sendable, Equatable {
    public var identity: String
    public var hostname: String
    public var pid: Int?
    public var tag: String
    /// The info's `version`: `courier 0.1.0`, or a Sidekiq version (`7.3.2`); Sidekiq 6 writes none.
    public var version: String?
    public var queues: [String]
    public var concurrency: Int
    public var busy: Int
    public var quiet: Bool
    /// Last heartbeat (epoch seconds).
    public var beat: Double?
    public var rssKB: Int?
    /// What a courier adds; nil for a Sidekiq process.
    public var courier: CourierFields?

    public init(
        identity: String, hostname: String = "", pid: Int? = nil, tag: String = "", version: String? = nil, queues: [String] = [],
        concurrency: Int = 0, busy: Int = 0, quiet: Bool = false, beat: Double? = nil, rssKB: Int? = nil, courier: CourierFields? = nil
    ) {
        self.identity = identity
        self.hostname = hostname
        self.pid = pid
        self.tag = tag
        self.version = version
        self.queues = queues
        self.concurrency = concurrency
        self.busy = busy
        self.quiet = quiet
        self.beat = beat
        self.rssKB = rssKB
        self.courier = courier
    }

    /// A courier, or Sidekiq 7+: both write the per-minute metrics the one-shot rates read.
    public var writesMinuteMetrics: Bool {
        if courier != nil || version?.hasPrefix("courier") == true { return true }
        guard let major = version?.split(separator: ".").first.flatMap({ Int($0) }) else { return false }
        return major >= 7
    }
}

/// The process hash's `courier` field.
public struct CourierFields: Sendable, Equatable {
    /// `closed`, `open` or `half_open`.
    public var breaker: String
    /// Jobs held: fetched, not yet acknowledged.
    public var inFlight: Int
    /// The executor's base URL (without credentials).
    public var executor: String

    public init(breaker: String, inFlight: Int, executor: String) {
        self.breaker = breaker
        self.inFlight = inFlight
        self.executor = executor
    }
}

/// Jobs over the last minute, and where the figures come from.
public struct Rates: Sendable, Equatable {
    public enum Source: String, Sendable {
        /// The last complete UTC minute of Sidekiq 7's metrics hashes (`j|…`), written by couriers and Sidekiq 7+.
        case minuteMetrics = "minute_metrics"
        /// The growth of `stat:processed`/`stat:failed` between refreshes of `--watch` (every process counts).
        case counters
    }

    /// Nil: no source (n/a).
    public var processed: Int?
    public var failed: Int?
    /// Seconds the figures cover.
    public var window: Double
    public var source: Source?
    /// What the figures leave out, or why there are none.
    public var note: String?

    public init(processed: Int? = nil, failed: Int? = nil, window: Double = 60, source: Source? = nil, note: String? = nil) {
        self.processed = processed
        self.failed = failed
        self.window = window
        self.source = source
        self.note = note
    }
}

/// Jobs of one tenant.
public struct TenantStatus: Sendable, Equatable {
    public var name: String
    /// Executing now (from the processes' work entries).
    public var busy: Int
    /// Waiting in queues (see `StatusSnapshot.tenantsSampled`).
    public var waiting: Int

    public init(name: String, busy: Int, waiting: Int) {
        self.name = name
        self.busy = busy
        self.waiting = waiting
    }
}

/// One periodic job in `courier status`: its declaration, next run and last enqueued tick.
public struct PeriodicStatus: Sendable, Equatable {
    public var name: String
    public var cron: String
    public var zone: String
    public var jobClass: String
    public var queue: String
    /// Next run (epoch seconds) when the leader last published; nil when it never fires again.
    public var next: Int?
    /// The latest tick enqueued (epoch seconds), nil before the first.
    public var lastTick: Int?

    public init(name: String, cron: String, zone: String, jobClass: String, queue: String, next: Int?, lastTick: Int?) {
        self.name = name
        self.cron = cron
        self.zone = zone
        self.jobClass = jobClass
        self.queue = queue
        self.next = next
        self.lastTick = lastTick
    }

    /// From the leader's JSON (`{"cron","tz","class","queue","next",…}`); nil when it is not that.
    public init?(name: String, json: [UInt8], lastTick: Int?) {
        guard let value = try? JSONReader.parse(json), let cron = value["cron"]?.stringValue else { return nil }
        self.init(
            name: name, cron: cron, zone: value["tz"]?.stringValue ?? "UTC", jobClass: value["class"]?.stringValue ?? "",
            queue: value["queue"]?.stringValue ?? "default", next: value["next"]?.intValue, lastTick: lastTick)
    }
}

/// One cluster-wide limiter in `courier status`: its declaration and how much of it is taken now.
public struct LimiterStatus: Sendable, Equatable {
    public var limiter: Limiter
    /// Leases held (concurrent), or starts in the current bucket or window.
    public var used: Int

    public init(limiter: Limiter, used: Int) {
        self.limiter = limiter
        self.used = used
    }

    /// The command that reads `used` at `now`: live leases, the window's starts, the bucket's count.
    static func usedCommand(_ limiter: Limiter, keys: SidekiqKeys, now: Double) -> [String] {
        switch limiter.kind {
        case .concurrent: return ["ZCOUNT", keys.limiterLeases(limiter.name), "(" + JSONWriter.float(now), "+inf"]
        case .window: return ["ZCOUNT", keys.limiterWindow(limiter.name), "(" + JSONWriter.float(now - Double(limiter.interval)), "+inf"]
        case .bucket: return ["GET", keys.limiterBucket(limiter.name, Int((now / Double(limiter.interval)).rounded(.down)))]
        }
    }
}
