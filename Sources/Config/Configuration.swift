// Courier's validated configuration: every setting one process runs with,
// built by CourierOptions.load (or by tests) and read by CourierService.
import ExecutorClient
import JobDispatch
import RedisClient
import SidekiqModel

/// Everything courier needs to run, validated once at start-up.
public struct CourierConfiguration: Sendable {
    public var redis: RedisEndpoint
    public var redisTimeouts = RedisTimeouts()
    /// redis-namespace prefix for every key (Sidekiq 6.x apps that use one).
    public var namespace: String?
    public var plan: QueuePlan
    /// Most jobs in flight at once (`-c`).
    public var concurrency: Int = 10
    public var executor: HTTPExecutorConfiguration
    /// How long SIGTERM waits for in-flight jobs before pushing them back (`-t`).
    public var shutdownTimeout: Duration = .seconds(25)
    /// Port of /health, /ready and /metrics; nil disables the ops server.
    public var opsPort: Int? = 7433
    public var opsBind = "0.0.0.0"
    public var tag = ""
    public var labels: [String] = []
    public var heartbeatInterval: Duration = .seconds(5)
    /// Seconds a process hash lives without a beat; other couriers recover a
    /// process's in-progress jobs only after it expired (Sidekiq uses 60).
    public var processTTL = 60
    /// Times a job may be recovered from dead processes before it is a poison pill.
    public var maxRecoveries = 3
    public var maxRetries = RetrySchedule.defaultMaxRetries
    /// Sidekiq's `poll_interval_average`; nil scales with the process count.
    public var pollIntervalAverage: Duration?
    public var breaker = CircuitBreakerSettings()
    /// Jobs per executor request when several are fetched at once (1 = no batching).
    public var batchSize = 1

    public init(redis: RedisEndpoint, plan: QueuePlan, executor: HTTPExecutorConfiguration) {
        self.redis = redis
        self.plan = plan
        self.executor = executor
    }
}

/// A configuration problem, naming the setting at fault.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let setting: String
    public let message: String
    public init(_ setting: String, _ message: String) {
        self.setting = setting
        self.message = message
    }
    public var description: String { "\(setting): \(message)" }
}
