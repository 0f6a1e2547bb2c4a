import CourierSupport
import ExecutorClient
import JobDispatch
import Logging
import Ops
import RedisClient
import SidekiqModel

// courier's command line and environment: every flag with its variable and
// help, and the merge of flags, environment and `-C config/sidekiq.yml` into
// one validated configuration. A flag wins over the environment, which wins
// over the file. Errors name the setting at fault (exit 64 in the executable).

/// courier's options and how they are read.
package enum CourierOptions {
    package static let overview = "Runs Sidekiq jobs from Redis through an HTTP executor sidecar."
    package static let discussion = """
        Every option can also come from the environment variable named in its help; \
        a flag wins over the environment, which wins over -C config/sidekiq.yml.
        Signals: TERM/INT stop (quiet, wait up to -t, push back the rest, exit 0); \
        TSTP quiet (fetch nothing more); TTIN logs the jobs in flight.
        Subcommand: courier cancel <jid> [--redis-url <url>] [--namespace <prefix>] asks the courier \
        running that job to have its executor interrupt it (see 'courier cancel --help').
        Subcommand: courier status [--watch[=<seconds>]] [--json] shows queues, processes, rates and \
        Sidekiq's sets from Redis (see 'courier status --help').
        """

    /// How to reach Redis: shared by `courier` and `courier cancel` (read by `redisSettings`).
    package static let redisFlags: [Flag] = [
        Flag(
            "redis-url", value: "url",
            help: "Redis URL: redis://[user:pass@]host:port/db or unix:///path?db=N. Env: REDIS_URL. Default: redis://127.0.0.1:6379/0."),
        Flag("namespace", value: "prefix", help: "Key prefix of redis-namespace, if the app uses one. Env: COURIER_NAMESPACE."),
        Flag(
            "redis-timeout-ms", value: "ms", kind: .integer,
            help: "Milliseconds a Redis command may take. Env: COURIER_REDIS_TIMEOUT_MS. Default: 5000."),
    ]

    package static let flags: [Flag] =
        redisFlags + [
            Flag("executor-url", value: "url", help: "Base URL of the executor sidecar, e.g. http://127.0.0.1:8088. Env: COURIER_EXECUTOR_URL."),
            Flag("secret-file", value: "path", help: "File holding the shared request-signing secret. Env: COURIER_SECRET (the secret itself)."),
            Flag(
                "concurrency", short: "c", value: "n", kind: .integer,
                help:
                    "Jobs in flight at most, a hard cap when set here or by COURIER_CONCURRENCY. Otherwise the "
                    + "file's :concurrency:, RAILS_MAX_THREADS or 10, raised to the executor's capacity, and by a "
                    + "quarter of it while jobs average under 1 s (jobs in transit keep its threads busy)."),
            Flag(
                "queue", short: "q", value: "name[,weight]", repeatable: true,
                help:
                    "Queue to fetch from, as NAME or NAME,WEIGHT; repeat in priority order. Env: COURIER_QUEUES (space-separated). Default: default."),
            Flag(
                "limit", value: "queue=n", repeatable: true,
                help: "Per-queue cap on jobs in flight, as QUEUE=N; repeatable. Env: COURIER_QUEUE_LIMITS (comma-separated)."),
            Flag("config", short: "C", value: "path", help: "An existing config/sidekiq.yml (:concurrency:, :queues:, :timeout:, :limits:)."),
            Flag(
                "timeout", short: "t", value: "seconds", kind: .integer,
                help: "Seconds SIGTERM waits for in-flight jobs before pushing them back. Env: COURIER_SHUTDOWN_TIMEOUT. Default: 25."),
            Flag(
                "job-timeout", value: "seconds", kind: .integer,
                help: "Seconds one job may run before it counts as timed out. Env: COURIER_JOB_TIMEOUT. Default: 600."),
            Flag(
                "connect-timeout-ms", value: "ms", kind: .integer,
                help: "Milliseconds a connect to the executor may take. Env: COURIER_CONNECT_TIMEOUT_MS. Default: 2000."),
            Flag(
                "ops-port", value: "port|off",
                help: "Port for /health, /ready and /metrics (0 picks a free port, 'off' disables). Env: COURIER_OPS_PORT. Default: 7433."),
            Flag("ops-bind", value: "address", help: "Address the ops port binds to. Env: COURIER_OPS_BIND. Default: 0.0.0.0."),
            Flag("tag", value: "tag", help: "Tag shown in the Sidekiq Web UI. Env: COURIER_TAG."),
            Flag(
                "label", value: "label", repeatable: true,
                help: "Label shown in the Sidekiq Web UI; repeatable. Env: COURIER_LABELS (comma-separated)."),
            Flag("max-retries", value: "n", kind: .integer, help: "Retries for jobs with retry: true. Env: COURIER_MAX_RETRIES. Default: 25."),
            Flag(
                "poll-interval", value: "seconds", kind: .number,
                help: "Average seconds between scheduler polls (Sidekiq's poll_interval_average). Env: COURIER_POLL_INTERVAL. Default: 5 × processes."
            ),
            Flag(
                "process-ttl", value: "seconds", kind: .integer,
                help: "Seconds a process entry lives without a heartbeat; its jobs are recovered after. Env: COURIER_PROCESS_TTL. Default: 60."),
            Flag(
                "breaker-failures", value: "n", kind: .integer,
                help: "Executor failures in a row that open the circuit breaker. Env: COURIER_BREAKER_FAILURES. Default: 5."),
            Flag(
                "breaker-cooldown", value: "seconds", kind: .number,
                help: "Seconds the breaker stays open first (doubles per trip, up to 30 × that). Env: COURIER_BREAKER_COOLDOWN. Default: 1."),
            Flag(
                "batch", value: "auto|n",
                help:
                    "Jobs per executor request when several are fetched together: auto streams them (/v1/jobs/stream, each outcome as it ends) sized from the executor's capacity when it offers streams, else one job per request; N caps a request at N jobs (streams, else /v1/jobs/batch); 1 = one job per request. Env: COURIER_BATCH. Default: auto."
            ),
            Flag(
                "fetch-ahead", value: "n", kind: .integer,
                help:
                    "Under a backlog of quick jobs (under 20 ms on average), jobs fetched beyond the free tokens, held in this process's in-progress list until a token frees (so the next job starts without waiting for Redis); back to their queue after 1 s without one. 0 turns it off. Env: COURIER_FETCH_AHEAD. Default: the concurrency."
            ),
            Flag(
                "tenant-key", value: "sources",
                help:
                    "Where a job's tenant is read, tried in order (comma-separated): a payload key (tenant, tenant_id, account_id, …), tags (the first of Sidekiq's tags), arg:N (argument N; ActiveJob: its arguments; a GlobalID reads as Model/id) or arg:N:KEY (a key of a hash argument). Env: COURIER_TENANT_KEY. Default: tenant,tags."
            ),
            Flag(
                "metrics-tenants", value: "a,b,…",
                help:
                    "Tenants that get their own tenant label in metrics; any other is counted as 'other'. Env: COURIER_METRICS_TENANTS (comma-separated). Default: the first --metrics-tenant-limit seen."
            ),
            Flag(
                "metrics-tenant-limit", value: "n", kind: .integer,
                help:
                    "Without --metrics-tenants: the first N distinct tenants seen get their own label, later ones 'other' (0: every job 'other'). Env: COURIER_METRICS_TENANT_LIMIT. Default: 50."
            ),
            Flag("log-format", value: "text|json", help: "Log format: text or json. Env: COURIER_LOG_FORMAT. Default: text."),
            Flag("log-level", value: "level", help: "Log level: debug, info, notice, warning, error. Env: COURIER_LOG_LEVEL. Default: info."),
        ]

    /// The validated configuration with the log settings, which only the executable uses.
    package struct Loaded {
        package var configuration: CourierConfiguration
        package var logFormat: CourierLogHandler.Format
        package var logLevel: Logger.Level
    }

    /// Where Redis is, how long a command may take, and the key prefix.
    package struct RedisSettings: Sendable {
        package var endpoint: RedisEndpoint
        package var timeouts: RedisTimeouts
        package var namespace: String?
    }

    /// Reads `redisFlags` (a flag wins over the environment).
    package static func redisSettings(_ flags: ParsedFlags, env: [String: String]) throws -> RedisSettings {
        let redisText = flags.string("redis-url") ?? env["REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        let endpoint: RedisEndpoint
        do { endpoint = try RedisEndpoint(url: redisText) } catch { throw usageError("--redis-url", error.message) }
        let redisMs = try flags.int("redis-timeout-ms") ?? envInt("COURIER_REDIS_TIMEOUT_MS", env) ?? 5000
        guard (1...3_600_000).contains(redisMs) else {
            throw usageError("--redis-timeout-ms/COURIER_REDIS_TIMEOUT_MS", "must be 1…3600000, got \(redisMs)")
        }
        return RedisSettings(
            endpoint: endpoint, timeouts: RedisTimeouts(connect: .milliseconds(min(redisMs, 2000)), command: .milliseconds(redisMs)),
            namespace: flags.string("namespace") ?? env["COURIER_NAMESPACE"])
    }

    package static func usageError(_ setting: String, _ message: String) -> UsageError { UsageError("\(setting): \(message)") }

    /// An environment value, nil when unset or empty (an empty variable counts as unset).
    static func nonEmpty(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }

    /// An integer environment variable; nil when unset or empty.
    package static func envInt(_ name: String, _ env: [String: String]) throws -> Int? {
        guard let text = env[name], !text.isEmpty else { return nil }
        guard let n = Int(text) else { throw usageError(name, "'\(text)' is not a whole number") }
        return n
    }

    /// Reads flags, environment and the config file into a validated configuration.
    package static func load(flags: ParsedFlags, env: [String: String]) throws -> Loaded {
        func fail(_ setting: String, _ message: String) -> UsageError { Self.usageError(setting, message) }
        func envInt(_ name: String) throws -> Int? { try Self.envInt(name, env) }

        var file: SidekiqConfigFile?
        if let path = flags.string("config") {
            guard let text = readTextFile(path) else { throw fail("-C", "cannot read '\(path)'") }
            do { file = try SidekiqConfigFile(path: path, text: text, environment: env) } catch { throw UsageError(error.description) }
        }

        let redis = try Self.redisSettings(flags, env: env)

        guard let executorText = flags.string("executor-url") ?? env["COURIER_EXECUTOR_URL"], !executorText.isEmpty else {
            throw fail("--executor-url", "required (or COURIER_EXECUTOR_URL): where the executor sidecar listens, e.g. http://127.0.0.1:8088")
        }
        guard let scheme = ["http://", "https://"].first(where: executorText.hasPrefix), executorText.count > scheme.count else {
            throw fail("--executor-url", "'\(executorText)' must be an http:// or https:// URL")
        }

        var specs: [QueueSpec] = []
        let queueTexts =
            !flags.strings("queue").isEmpty ? flags.strings("queue") : (env["COURIER_QUEUES"].map { $0.split(separator: " ").map(String.init) } ?? [])
        do {
            if !queueTexts.isEmpty { specs = try queueTexts.map(QueueSpec.parse) } else { specs = file?.queues ?? [QueueSpec(name: "default")] }
        } catch { throw fail("-q", error.message) }
        var limitMap = file?.limits ?? [:]
        let limitTexts =
            !flags.strings("limit").isEmpty
            ? flags.strings("limit") : (env["COURIER_QUEUE_LIMITS"].map { $0.split(separator: ",").map(String.init) } ?? [])
        for text in limitTexts {
            let parts = text.split(separator: "=", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let n = Int(parts[1]), n >= 1 else {
                throw fail("--limit", "'\(text)' must be QUEUE=N with N ≥ 1")
            }
            limitMap[String(parts[0])] = n
        }
        let plan: QueuePlan
        do { plan = try QueuePlan(specs).withLimits(limitMap) } catch { throw fail("-q/--limit", error.message) }

        var secret: [UInt8]?
        if let path = flags.string("secret-file") {
            guard let text = readTextFile(path) else { throw fail("--secret-file", "cannot read '\(path)'") }
            // Only the trailing newline an editor adds is dropped, exactly as the sidecar reads it.
            var value = Substring(text)
            if value.hasSuffix("\n") { value = value.dropLast() }
            if value.hasSuffix("\r") { value = value.dropLast() }
            secret = Array(value.utf8)
        } else if let value = env["COURIER_SECRET"], !value.isEmpty {
            secret = Array(value.utf8)
        }

        // Ranges keep every later conversion (to milliseconds, to Duration) far from overflow.
        // Errors name the flag and its variable: the value may have come from either (or the file).
        let ownConcurrency = try flags.int("concurrency") ?? envInt("COURIER_CONCURRENCY")
        let concurrency = try ownConcurrency ?? file?.concurrency ?? envInt("RAILS_MAX_THREADS") ?? 10
        guard (1...10_000).contains(concurrency) else { throw fail("-c/COURIER_CONCURRENCY", "concurrency must be 1…10000, got \(concurrency)") }
        let jobTimeout = try flags.int("job-timeout") ?? envInt("COURIER_JOB_TIMEOUT") ?? 600
        guard (1...604_800).contains(jobTimeout) else {
            throw fail("--job-timeout/COURIER_JOB_TIMEOUT", "must be 1…604800 seconds, got \(jobTimeout)")
        }
        let connectMs = try flags.int("connect-timeout-ms") ?? envInt("COURIER_CONNECT_TIMEOUT_MS") ?? 2000
        guard (1...3_600_000).contains(connectMs) else {
            throw fail("--connect-timeout-ms/COURIER_CONNECT_TIMEOUT_MS", "must be 1…3600000, got \(connectMs)")
        }
        let shutdown = try flags.int("timeout") ?? envInt("COURIER_SHUTDOWN_TIMEOUT") ?? file?.timeout ?? 25
        guard (0...86_400).contains(shutdown) else { throw fail("-t/COURIER_SHUTDOWN_TIMEOUT", "must be 0…86400 seconds, got \(shutdown)") }

        var configuration = CourierConfiguration(
            redis: redis.endpoint, plan: plan,
            executor: HTTPExecutorConfiguration(
                baseURL: executorText, secret: secret, connectTimeout: .milliseconds(connectMs),
                jobTimeout: .seconds(jobTimeout), maxConnections: concurrency + 4))
        configuration.redisTimeouts = redis.timeouts
        configuration.namespace = redis.namespace
        configuration.concurrency = concurrency
        configuration.concurrencyIsExplicit = ownConcurrency != nil
        configuration.shutdownTimeout = .seconds(shutdown)
        let portText = flags.string("ops-port") ?? env["COURIER_OPS_PORT"] ?? "7433"
        if portText == "off" {
            configuration.opsPort = nil
        } else {
            guard let port = Int(portText), (0...65535).contains(port) else {
                throw fail("--ops-port", "'\(portText)' must be a port number or 'off'")
            }
            configuration.opsPort = port
        }
        configuration.opsBind = flags.string("ops-bind") ?? env["COURIER_OPS_BIND"] ?? "0.0.0.0"
        configuration.tag = flags.string("tag") ?? env["COURIER_TAG"] ?? file?.tag ?? ""
        configuration.labels =
            !flags.strings("label").isEmpty
            ? flags.strings("label")
            : env["COURIER_LABELS"].map { $0.split(separator: ",").map(String.init) } ?? file?.labels ?? []
        configuration.maxRetries = try flags.int("max-retries") ?? envInt("COURIER_MAX_RETRIES") ?? file?.maxRetries ?? 25
        guard (0...1_000).contains(configuration.maxRetries) else {
            throw fail("--max-retries/COURIER_MAX_RETRIES", "must be 0…1000, got \(configuration.maxRetries)")
        }
        func envDouble(_ name: String) throws -> Double? {
            guard let text = env[name] else { return nil }
            guard let n = Double(text), n.isFinite else { throw fail(name, "'\(text)' is not a number") }
            return n
        }
        if let poll = try flags.double("poll-interval") ?? envDouble("COURIER_POLL_INTERVAL") ?? file?.pollIntervalAverage {
            guard poll.isFinite, (0.001...86_400).contains(poll) else {
                throw fail("--poll-interval/COURIER_POLL_INTERVAL", "must be 0.001…86400 seconds, got \(poll)")
            }
            configuration.pollIntervalAverage = .milliseconds(Int(poll * 1000))
        }
        configuration.periodic = file?.periodic ?? []
        configuration.limiters = Limiters(file?.limiters ?? [])
        let lease = try envInt("COURIER_PERIODIC_LEASE") ?? file?.periodicLease ?? 20
        guard (1...3600).contains(lease) else { throw fail(":periodic_lease:/COURIER_PERIODIC_LEASE", "must be 1…3600 seconds, got \(lease)") }
        configuration.periodicLease = .seconds(lease)
        configuration.processTTL = try flags.int("process-ttl") ?? envInt("COURIER_PROCESS_TTL") ?? 60
        guard (15...86_400).contains(configuration.processTTL) else {
            throw fail("--process-ttl/COURIER_PROCESS_TTL", "must be 15…86400 seconds (at least three heartbeats), got \(configuration.processTTL)")
        }
        if let n = try flags.int("breaker-failures") ?? envInt("COURIER_BREAKER_FAILURES") {
            guard (1...1_000_000).contains(n) else { throw fail("--breaker-failures/COURIER_BREAKER_FAILURES", "must be 1…1000000, got \(n)") }
            configuration.breaker.consecutiveFailures = n
        }
        if let seconds = try flags.double("breaker-cooldown") ?? envDouble("COURIER_BREAKER_COOLDOWN") {
            guard seconds.isFinite, (0.001...3_600).contains(seconds) else {
                throw fail("--breaker-cooldown/COURIER_BREAKER_COOLDOWN", "must be 0.001…3600 seconds, got \(seconds)")
            }
            configuration.breaker.cooldown = .milliseconds(Int(seconds * 1000))
            configuration.breaker.maxCooldown = .milliseconds(Int(seconds * 30_000))
        }
        let batchText = flags.string("batch") ?? env["COURIER_BATCH"] ?? "auto"
        if batchText == "auto" {
            configuration.batch = .auto
        } else {
            guard let n = Int(batchText), (1...1000).contains(n) else {
                throw fail("--batch/COURIER_BATCH", "must be auto or 1…1000, got '\(batchText)'")
            }
            configuration.batch = .fixed(n)
        }
        if let ahead = try flags.int("fetch-ahead") ?? envInt("COURIER_FETCH_AHEAD") {
            guard (0...10_000).contains(ahead) else { throw fail("--fetch-ahead/COURIER_FETCH_AHEAD", "must be 0…10000, got \(ahead)") }
            configuration.fetchAhead = ahead
        }
        if let text = flags.string("tenant-key") ?? nonEmpty(env["COURIER_TENANT_KEY"]) ?? file?.tenantKey {
            do { configuration.tenant = try TenantRule(parsing: text) } catch { throw fail("--tenant-key/COURIER_TENANT_KEY", error.message) }
        }
        let tenantsText = flags.string("metrics-tenants") ?? nonEmpty(env["COURIER_METRICS_TENANTS"])
        let allowed = tenantsText.map { $0.split(separator: ",", omittingEmptySubsequences: false).map { String($0) } } ?? file?.metricsTenants
        if let allowed {
            guard !allowed.isEmpty, !allowed.contains(where: \.isEmpty) else {
                throw fail("--metrics-tenants/COURIER_METRICS_TENANTS", "must list tenants separated by commas, got '\(tenantsText ?? "")'")
            }
            configuration.metricsLabels.tenants = .allow(Set(allowed))
        }
        let tenantLimit = try flags.int("metrics-tenant-limit") ?? envInt("COURIER_METRICS_TENANT_LIMIT") ?? file?.metricsTenantLimit ?? 50
        guard (0...10_000).contains(tenantLimit) else {
            throw fail("--metrics-tenant-limit/COURIER_METRICS_TENANT_LIMIT", "must be 0…10000, got \(tenantLimit)")
        }
        if allowed == nil { configuration.metricsLabels.tenants = .firstSeen(limit: tenantLimit) }
        let formatText = flags.string("log-format") ?? env["COURIER_LOG_FORMAT"] ?? "text"
        guard let format = CourierLogHandler.Format(rawValue: formatText) else { throw fail("--log-format", "'\(formatText)' must be text or json") }
        let levelText = flags.string("log-level") ?? env["COURIER_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw fail("--log-level", "'\(levelText)' must be trace, debug, info, notice, warning or error")
        }
        return Loaded(configuration: configuration, logFormat: format, logLevel: level)
    }
}
