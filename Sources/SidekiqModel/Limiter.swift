// Cluster-wide limiters (`:limiters:` in sidekiq.yml, docs/limiters.md): at
// most N jobs of some classes or queues running at once across every
// courier, or at most N starts per interval. The three kinds and their
// option names are Sidekiq Enterprise's (`Sidekiq::Limiter.concurrent`,
// `.bucket`, `.window`). These are the declarations only; the exchange
// script enforces them inside Redis, where every courier sees the same state.

/// One declared limiter.
public struct Limiter: Sendable, Equatable {
    /// How a limiter counts.
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// At most `count` jobs hold a lease at once. A lease ends with the job, is renewed by its
        /// courier's heartbeat, and lapses `lockTimeout` seconds after a dead courier's last one.
        case concurrent
        /// At most `count` starts in each interval-long bucket aligned to the epoch (12:00:00–12:00:59, …).
        case bucket
        /// At most `count` starts in any interval-long sliding window.
        case window
    }

    /// The limiter's name: its Redis keys are `courier:limit:NAME:…`.
    public var name: String
    public var kind: Kind
    /// Jobs at once (concurrent) or starts per interval (bucket, window); ≥ 1.
    public var count: Int
    /// Seconds per bucket or window (unused by concurrent).
    public var interval: Int
    /// Seconds a lease outlives its courier's last heartbeat (concurrent only).
    public var lockTimeout: Int
    /// Job classes it applies to (an ActiveJob's wrapped class counts); each job of them takes a slot.
    public var classes: [String]
    /// Queues it applies to: a queue at its limit is not fetched from, its jobs stay where they are.
    public var queues: [String]

    /// Sidekiq Enterprise's default `lock_timeout`.
    public static let defaultLockTimeout = 30

    public init(
        name: String, kind: Kind, count: Int, interval: Int = 1, lockTimeout: Int = Limiter.defaultLockTimeout, classes: [String] = [],
        queues: [String] = []
    ) {
        self.name = name
        self.kind = kind
        self.count = count
        self.interval = interval
        self.lockTimeout = lockTimeout
        self.classes = classes
        self.queues = queues
    }

    /// A name safe inside a Redis key and a space-separated list: letters, digits, `_`, `-`, `.`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 100
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0))
            }
    }

    /// The declaration as JSON (`courier:limiters`, read by `courier status`).
    public var json: String {
        "{\"type\":\(JSONWriter.string(kind.rawValue)),\"count\":\(count),\"interval\":\(interval),\"lock_timeout\":\(lockTimeout),"
            + "\"classes\":\(JSONWriter.array(classes)),\"queues\":\(JSONWriter.array(queues))}"
    }

    /// From that JSON; nil when it is not one.
    public init?(name: String, json: [UInt8]) {
        guard let value = try? JSONReader.parse(json), let kind = value["type"]?.stringValue.flatMap(Kind.init), let count = value["count"]?.intValue
        else { return nil }
        self.init(
            name: name, kind: kind, count: count, interval: value["interval"]?.intValue ?? 1,
            lockTimeout: value["lock_timeout"]?.intValue ?? Self.defaultLockTimeout,
            classes: value["classes"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            queues: value["queues"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }

    /// Enterprise's named intervals, in seconds.
    public static let namedIntervals: [String: Int] = ["second": 1, "minute": 60, "hour": 3_600, "day": 86_400]
}

/// Every limiter a courier enforces, with the questions the dispatcher asks of them.
public struct Limiters: Sendable, Equatable {
    public let all: [Limiter]
    /// Some limiter names classes: any queue may hold their jobs.
    public let limitsClasses: Bool
    /// Queues some limiter names (read for every idle queue the dispatcher arms: built once).
    public let limitedQueues: Set<String>

    public init(_ all: [Limiter] = []) {
        self.all = all
        self.limitsClasses = all.contains { !$0.classes.isEmpty }
        self.limitedQueues = Set(all.flatMap(\.queues))
    }

    public var isEmpty: Bool { all.isEmpty }

    /// Whether an idle queue's watcher may move a job in on its own (a claim). A claim bypasses
    /// the exchange script, where limits are enforced: a limited queue, or any queue when classes
    /// are limited, is only watched (a look wakes the dispatcher, whose fetch applies the limits).
    public func allowsClaims(on queue: String) -> Bool { !limitsClasses && !limitedQueues.contains(queue) }
}
