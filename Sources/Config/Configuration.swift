// Courier's validated configuration: every setting one process runs with,
// built by CourierOptions.load (or by tests) and read by CourierService.
import ExecutorClient
import JobDispatch
import Ops
import RedisClient
import SidekiqModel

/// Everything courier needs to run, validated once at start-up.
public struct CourierConfiguration: Sendable {
    /// The Redis server (`--redis-url`/`REDIS_URL`, redis-rb's URL forms).
    public var redis: RedisEndpoint
    /// Connect and command timeouts (`--redis-timeout-ms`).
    public var redisTimeouts = RedisTimeouts()
    /// redis-namespace prefix for every key (Sidekiq 6.x apps that use one).
    public var namespace: String?
    /// Queues to fetch from, their mode and per-queue caps (`-q`, `--limit`, `:queues:`); the default is `default` alone.
    public var plan: QueuePlan
    /// Most jobs in flight at once (`-c`), before the tokens for jobs in transit (TransitTokens).
    public var concurrency: Int = 10
    /// `concurrency` came from `-c` or COURIER_CONCURRENCY (not the Sidekiq file, RAILS_MAX_THREADS or
    /// the default): it is then a hard cap, with no tokens added for jobs in transit.
    public var concurrencyIsExplicit = false
    /// The executor's base URL, signing secret and HTTP timeouts.
    public var executor: HTTPExecutorConfiguration
    /// How long SIGTERM waits for in-flight jobs before pushing them back (`-t`).
    public var shutdownTimeout: Duration = .seconds(25)
    /// Port of /health, /ready and /metrics; nil disables the ops server.
    public var opsPort: Int? = 7433
    /// Address the ops server binds to (`--ops-bind`).
    public var opsBind = "0.0.0.0"
    /// The process info's `tag` on the Web UI's Busy page (`--tag`, `:tag:`); "" for none.
    public var tag = ""
    /// The process info's `labels` (`--label`, `:labels:`); `courier` is always added.
    public var labels: [String] = []
    /// Time between heartbeats (Sidekiq 6's 5 s); there is no flag for it, tests shorten it.
    public var heartbeatInterval: Duration = .seconds(5)
    /// Seconds a process hash lives without a beat; other couriers recover a
    /// process's in-progress jobs only after it expired (Sidekiq uses 60).
    public var processTTL = 60
    /// Times a job may be recovered from dead processes before it is a poison pill.
    public var maxRecoveries = 3
    /// Retries for `retry: true` jobs (`--max-retries`, `:max_retries:`); a job's own integer `retry` wins.
    public var maxRetries = RetrySchedule.defaultMaxRetries
    /// Sidekiq's `poll_interval_average`; nil scales with the process count.
    public var pollIntervalAverage: Duration?
    /// When the executor circuit breaker opens and for how long (`--breaker-failures`, `--breaker-cooldown`).
    public var breaker = CircuitBreakerSettings()
    /// Jobs per executor request when several are fetched at once (1 = no batching).
    public var batch: BatchSetting = .auto
    /// Jobs fetched ahead of a free token under a backlog of quick jobs (`--fetch-ahead`); nil: the concurrency.
    public var fetchAhead: Int?
    /// Where a job's tenant is read from (`--tenant-key`): logs, metrics and the executor's `Courier-Tenant`.
    public var tenant: TenantRule = .default
    /// How many tenants (and classes) get a label of their own (`--metrics-tenants`, `--metrics-tenant-limit`).
    public var metricsLabels = MetricsLabels()

    /// Periodic jobs (`:periodic:` in sidekiq.yml); the lease holder among the couriers enqueues them.
    public var periodic: [PeriodicJob] = []
    /// The periodic leader lease's time to live (`:periodic_lease:`, `COURIER_PERIODIC_LEASE`): how long
    /// a dead leader's lease keeps the others from taking over. Renewed every third of it.
    public var periodicLease: Duration = .seconds(20)
    /// Cluster-wide limiters (`:limiters:` in sidekiq.yml, docs/limiters.md), enforced inside Redis by the exchange script.
    public var limiters = Limiters()

    /// The other settings start at their documented defaults; `CourierOptions.load` sets them from flags, environment and `-C`.
    public init(redis: RedisEndpoint, plan: QueuePlan, executor: HTTPExecutorConfiguration) {
        self.redis = redis
        self.plan = plan
        self.executor = executor
    }
}

/// A configuration problem, naming the setting at fault.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The setting at fault, e.g. `-C config/sidekiq.yml` or `REDIS_URL`.
    public let setting: String
    /// What is wrong with it.
    public let message: String
    /// An error about `setting`.
    public init(_ setting: String, _ message: String) {
        self.setting = setting
        self.message = message
    }
    /// `setting: message`, as courier prints it before it exits.
    public var description: String { "\(setting): \(message)" }
}
