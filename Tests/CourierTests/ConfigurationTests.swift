// Configuration from URLs, queue options and config/sidekiq.yml.
import Config
import CourierService
import ExecutorProtocol
import JobDispatch
import Ops
import RedisAdapters
import Foundation
import RedisClient
import SidekiqModel
import XCTest

/// Parsing of REDIS_URL, queue options and config/sidekiq.yml, and the CLI's refusal of bad input.
final class ConfigurationTests: XCTestCase {
    func testRedisURLs() throws {
        XCTAssertEqual(
            try RedisEndpoint(url: "redis://127.0.0.1:6380/2"),
            RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6380), database: 2))
        XCTAssertEqual(
            try RedisEndpoint(url: "redis://:s3cret@redis"),
            RedisEndpoint(address: .tcp(host: "redis", port: 6379), password: "s3cret"))
        XCTAssertEqual(
            try RedisEndpoint(url: "redis://app:p%40ss@redis:7000/1"),
            RedisEndpoint(address: .tcp(host: "redis", port: 7000), username: "app", password: "p@ss", database: 1))
        XCTAssertEqual(
            try RedisEndpoint(url: "unix:///var/run/redis.sock?db=3"),
            RedisEndpoint(address: .unix(path: "/var/run/redis.sock"), database: 3))
        XCTAssertEqual(try RedisEndpoint(url: "redis://[::1]:6390"), RedisEndpoint(address: .tcp(host: "::1", port: 6390)))
        for bad in ["localhost:6379", "redis://h:99999", "redis://h/x", "rediss://h", "http://h"] {
            XCTAssertThrowsError(try RedisEndpoint(url: bad), bad)
        }
        XCTAssertEqual(try RedisEndpoint(url: "redis://u:pw@h:1/0").redacted, "redis://u:***@h:1/0")
    }

    /// `-c` and COURIER_CONCURRENCY are hard caps; RAILS_MAX_THREADS and the default are floors the executor's capacity may raise.
    func testConcurrencyIsExplicitOnlyWhenSetForCourier() throws {
        func load(_ arguments: [String], env: [String: String] = [:]) throws -> CourierConfiguration {
            guard case let .run(flags) = try FlagParser.parse(["--executor-url", "http://127.0.0.1:1"] + arguments, flags: CourierOptions.flags)
            else { throw TestFailure("not a run") }
            return try CourierOptions.load(flags: flags, env: env).configuration
        }
        for (arguments, env, concurrency, explicit) in [
            ([], [:], 10, false), (["-c", "7"], [:], 7, true), ([], ["COURIER_CONCURRENCY": "9"], 9, true),
            ([], ["RAILS_MAX_THREADS": "25"], 25, false), (["-c", "3"], ["RAILS_MAX_THREADS": "25"], 3, true),
        ] as [([String], [String: String], Int, Bool)] {
            let configuration = try load(arguments, env: env)
            XCTAssertEqual(configuration.concurrency, concurrency, "\(arguments) \(env)")
            XCTAssertEqual(configuration.concurrencyIsExplicit, explicit, "\(arguments) \(env)")
        }
    }

    func testQueueOptions() throws {
        let strict = try QueuePlan([QueueSpec.parse("critical"), QueueSpec.parse("default")])
        XCTAssertEqual(strict.mode, .strict)
        let weighted = try QueuePlan([QueueSpec.parse("critical,3"), QueueSpec.parse("default")])
        XCTAssertEqual(weighted.mode, .weighted)
        XCTAssertEqual(weighted.effectiveWeights.map(\.1), [3, 1])
        XCTAssertThrowsError(try QueuePlan([QueueSpec.parse("a"), QueueSpec.parse("a")]))
        XCTAssertThrowsError(try QueueSpec.parse("a,-1"))
        XCTAssertThrowsError(try QueueSpec.parse("a,1,2"))
        XCTAssertThrowsError(try strict.withLimits(["nope": 1]))
        XCTAssertEqual(try strict.withLimits(["default": 2]).queues[1].limit, 2)
    }

    func testSidekiqYAML() throws {
        let text = """
            ---
            :concurrency: <%= ENV.fetch("WORKERS", 7) %>
            :timeout: 8
            :queues:
              - critical
              - [default, 2]
              - <%= ENV['EXTRA'] || 'low' %>
            :limits:
              critical: 3
            :tag: myapp
            :labels: [blue, eu]
            :max_retries: 7
            :poll_interval_average: 2.5
            production:
              :concurrency: 30
            """
        let file = try SidekiqConfigFile(path: "sidekiq.yml", text: text, environment: [:])
        XCTAssertEqual(file.concurrency, 7)
        XCTAssertEqual(file.timeout, 8)
        XCTAssertEqual(file.queues?.map(\.name), ["critical", "default", "low"])
        XCTAssertEqual(file.queues?.map(\.weight), [0, 2, 0])
        XCTAssertEqual(file.limits, ["critical": 3])
        XCTAssertEqual(file.tag, "myapp")
        XCTAssertEqual(file.labels, ["blue", "eu"])
        XCTAssertEqual(file.maxRetries, 7)
        XCTAssertEqual(file.pollIntervalAverage, 2.5)
        let prod = try SidekiqConfigFile(path: "sidekiq.yml", text: text, environment: ["RAILS_ENV": "production", "WORKERS": "4"])
        XCTAssertEqual(prod.concurrency, 30)
        XCTAssertThrowsError(try SidekiqConfigFile(path: "x.yml", text: ":concurrency: many\n", environment: [:])) { error in
            XCTAssertTrue("\(error)".contains("concurrency"))
        }
        XCTAssertThrowsError(try SidekiqConfigFile(path: "x.yml", text: ":queues: [a, a]\n:x: [", environment: [:]))
        // ERB forms Rails apps use: a block default, and conversions at the end.
        let erb = try SidekiqConfigFile(
            path: "e.yml", text: ":concurrency: <%= ENV.fetch(\"RAILS_MAX_THREADS\") { 6 } %>\n:timeout: <%= ENV.fetch('T', 9).to_i %>\n",
            environment: [:])
        XCTAssertEqual(erb.concurrency, 6)
        XCTAssertEqual(erb.timeout, 9)
        // Symbols, as Psych loads them, are their names to Sidekiq.
        // `- [:low, 1]` is refused, as by Psych (libyaml 0.2.5 takes every ':' inside [...] for a
        // value indicator): block lists and !ruby/symbol work.
        let symbols = try SidekiqConfigFile(
            path: "s.yml", text: ":queues:\n  - :critical\n  - - :low\n    - 1\n  - [!ruby/symbol mid, 2]\n:tag: :app\n",
            environment: [:])
        XCTAssertEqual(symbols.queues?.map(\.name), ["critical", "low", "mid"])
        XCTAssertEqual(symbols.queues?.map(\.weight), [0, 1, 2])
        XCTAssertEqual(symbols.tag, "app")
        XCTAssertThrowsError(try SidekiqConfigFile(path: "s.yml", text: ":queues:\n  - [:low, 1]\n", environment: [:]))
    }

    /// `:limiters:` with Sidekiq Enterprise's kinds and option names; every mistake names the limiter and the key.
    func testLimitersSection() throws {
        let text = """
            :limiters:
              erp:
                :type: concurrent
                :count: 50
                :lock_timeout: 60
                :wait_timeout: 5
                :class: ErpSyncJob
              stripe:
                type: bucket
                count: 30
                interval: :second
                classes: [StripeChargeJob, StripeRefundJob]
              mailgun:
                type: window
                count: 5
                interval: 90
                queues: mail
            """
        let file = try SidekiqConfigFile(path: "sidekiq.yml", text: text, environment: [:])
        XCTAssertEqual(
            file.limiters,
            [
                Limiter(name: "erp", kind: .concurrent, count: 50, lockTimeout: 60, classes: ["ErpSyncJob"]),
                Limiter(name: "stripe", kind: .bucket, count: 30, interval: 1, classes: ["StripeChargeJob", "StripeRefundJob"]),
                Limiter(name: "mailgun", kind: .window, count: 5, interval: 90, queues: ["mail"]),
            ])
        XCTAssertEqual(file.limiters[0].lockTimeout, 60)
        let limiters = Limiters(file.limiters)
        XCTAssertTrue(limiters.limitsClasses)
        XCTAssertFalse(limiters.allowsClaims(on: "default"), "with class limits every queue is only watched")
        XCTAssertTrue(Limiters([file.limiters[2]]).allowsClaims(on: "default"))
        XCTAssertFalse(Limiters([file.limiters[2]]).allowsClaims(on: "mail"))
        XCTAssertEqual(
            try SidekiqConfigFile(path: "s.yml", text: ":limiters:\n  a: {type: concurrent, count: 2, queue: q}\n", environment: [:]).limiters[0]
                .lockTimeout, Limiter.defaultLockTimeout)
        let mistakes: [(String, String)] = [
            ("a: {type: leaky, count: 2, queue: q}", "'a': type: must be concurrent, bucket or window"),
            ("a: {type: concurrent, count: 0, queue: q}", "'a': count: must be a whole number"),
            ("a: {type: concurrent, count: 2}", "'a': needs class: or queue:"),
            ("a: {type: bucket, count: 2, queue: q}", "'a': interval: is required"),
            ("a: {type: window, count: 2, interval: fortnight, queue: q}", "'a': interval: must be second, minute, hour, day"),
            ("a: {type: concurrent, count: 2, interval: 1, queue: q}", "'a': interval: is for bucket and window limiters"),
            ("a: {type: concurrent, count: 2, lock_timeout: 2, queue: q}", "'a': lock_timeout: must be 10…86400 seconds"),
            ("a: {type: bucket, count: 2, interval: 1, lock_timeout: 20, queue: q}", "'a': lock_timeout: is for concurrent limiters"),
            ("a: {type: concurrent, count: 2, queue: q, limit: 3}", "'a': unknown key 'limit'"),
            ("a b: {type: concurrent, count: 2, queue: q}", "'a b': a name is 1…100 letters"),
            ("a: 3", "'a': must be a mapping"),
        ]
        for (entry, message) in mistakes {
            XCTAssertThrowsError(try SidekiqConfigFile(path: "x.yml", text: ":limiters:\n  \(entry)\n", environment: [:]), entry) { error in
                XCTAssertTrue("\(error)".contains(":limiters: \(message)"), "\(error)")
            }
        }
    }

    /// Numbers and names read as Psych (and so Sidekiq) reads them.
    func testPsychTypedOptions() throws {
        let file = try SidekiqConfigFile(
            path: "p.yml", text: ":concurrency: 0x10\n:timeout: 1_000\n:tag: yes\n:queues:\n- 010\n- :'ab'\n- \"c\"\n- !ruby/symbol d\n",
            environment: [:])
        XCTAssertEqual(file.concurrency, 16)
        XCTAssertEqual(file.timeout, 1000)
        XCTAssertEqual(file.tag, "true")
        XCTAssertEqual(file.queues?.map(\.name), ["8", "ab", "c", "d"])
    }

    /// `--help` documents every flag with its environment variable; `--version`
    /// prints the version; `--flag=value` and `-cN` are read like `--flag value`.
    func testHelpVersionAndFlagForms() throws {
        let help = try CourierProcess(arguments: ["--help"])
        XCTAssertEqual(help.waitForExit(), 0)
        for flag in [
            "--redis-url", "--namespace", "--executor-url", "--secret-file", "-c, --concurrency", "-q, --queue", "--limit",
            "-C, --config", "-t, --timeout", "--job-timeout", "--connect-timeout-ms", "--redis-timeout-ms", "--ops-port",
            "--ops-bind", "--tag", "--label", "--max-retries", "--poll-interval", "--process-ttl", "--breaker-failures",
            "--breaker-cooldown", "--batch", "--fetch-ahead", "--log-format", "--log-level", "--version", "-h, --help",
        ] {
            XCTAssertTrue(help.log.contains(flag), "--help lists \(flag)")
        }
        for variable in [
            "REDIS_URL", "COURIER_EXECUTOR_URL", "COURIER_CONCURRENCY", "COURIER_SECRET", "COURIER_QUEUES", "COURIER_OPS_PORT",
            "COURIER_SHUTDOWN_TIMEOUT", "COURIER_LOG_LEVEL", "COURIER_BATCH", "COURIER_FETCH_AHEAD",
        ] {
            XCTAssertTrue(help.log.contains(variable), "--help names \(variable)")
        }
        let version = try CourierProcess(arguments: ["--version"])
        XCTAssertEqual(version.waitForExit(), 0)
        XCTAssertEqual(version.log.trimmingCharacters(in: .whitespacesAndNewlines), CourierVersion.version)
        // Value forms: each of these is read, so the run fails later on the bad queue name, not on the form.
        for arguments in [
            ["--executor-url=http://127.0.0.1:1", "-c5", "-q", "a,x"], ["--executor-url", "http://127.0.0.1:1", "--concurrency=5", "--queue=a,x"],
        ] {
            let child = try CourierProcess(arguments: arguments, environment: ["COURIER_EXECUTOR_URL": "", "REDIS_URL": ""])
            XCTAssertEqual(child.waitForExit(), 64)
            XCTAssertTrue(child.log.contains("-q: queue 'a,x'"), "\(arguments): \(child.log)")
        }
        for (arguments, message) in [
            (["-c"], "Missing value for '-c <n>'"), (["-c", "ten"], "The value 'ten' is invalid for '-c <n>'"),
            (["-Z", "1"], "Unknown option '-Z'"), (["stray"], "Unexpected argument 'stray'"),
            (["--namespace", "--tag=web"], "Missing value for '--namespace <prefix>'"),
            (["--version=1"], "'--version' takes no value"),
            (["--executor-url", "http://127.0.0.1:1", "--poll-interval", "1e16"], "--poll-interval"),
            (["--executor-url", "http://127.0.0.1:1", "--job-timeout", "99999999999999999"], "--job-timeout"),
            (["--executor-url", "http://127.0.0.1:1", "--limit", "a==3"], "--limit"),
        ] {
            let child = try CourierProcess(arguments: arguments)
            XCTAssertEqual(child.waitForExit(), 64, "\(arguments)")
            XCTAssertTrue(child.log.contains(message), "\(arguments): \(child.log)")
        }
    }

    /// A bad flag or value stops start-up with exit code 64 and names the setting.
    func testBadFlagsExit64() throws {
        let cases: [([String], String)] = [
            (["--bogus"], "--bogus"),
            (["--executor-url", "http://127.0.0.1:1", "-c", "0"], "-c"),
            (["--executor-url", "http://127.0.0.1:1", "-q", "a,x"], "-q"),
            (["--executor-url", "http://127.0.0.1:1", "--redis-url", "nope"], "--redis-url"),
            (["--executor-url", "ftp://x"], "--executor-url"),
            (["--executor-url", "http://127.0.0.1:1", "--log-format", "xml"], "--log-format"),
            (["--executor-url", "http://127.0.0.1:1", "-C", "/nonexistent/sidekiq.yml"], "-C"),
            (["--executor-url", "http://127.0.0.1:1", "--fetch-ahead", "20000"], "--fetch-ahead"),
            ([], "--executor-url"),
        ]
        for (arguments, named) in cases {
            let child = try CourierProcess(arguments: arguments, environment: ["COURIER_EXECUTOR_URL": "", "REDIS_URL": ""])
            XCTAssertEqual(child.waitForExit(), 64, "\(arguments): \(child.log)")
            XCTAssertTrue(child.log.contains(named), "\(arguments) should name \(named): \(child.log)")
        }
    }
}
