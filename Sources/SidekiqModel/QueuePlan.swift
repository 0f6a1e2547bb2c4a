// Which queues to fetch from and in what order, configured the Sidekiq way:
// `-q critical -q default` (strict: always in that order) or
// `-q critical,3 -q default,1` (weighted: each fetch prefers a queue with
// probability proportional to its weight). As in Sidekiq 6.4.1, any weight
// turns strict ordering off. Courier adds optional per-queue caps on jobs
// in flight.

/// One configured queue.
public struct QueueSpec: Sendable, Equatable {
    /// Queue name without the `queue:` prefix.
    public var name: String
    /// Sidekiq's fetch weight: 0 when none was given; any weight > 0 makes the whole plan weighted.
    public var weight: Int
    /// At most this many jobs of this queue in flight at once (nil: only the global limit).
    public var limit: Int?

    /// By default no weight and no cap of its own.
    public init(name: String, weight: Int = 0, limit: Int? = nil) {
        self.name = name
        self.weight = weight
        self.limit = limit
    }

    /// Parses Sidekiq's `name[,weight]` form.
    public static func parse(_ text: String) throws(QueuePlanError) -> QueueSpec {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        guard let name = parts.first, !name.isEmpty, parts.count <= 2 else {
            throw QueuePlanError("queue '\(text)' must be NAME or NAME,WEIGHT")
        }
        guard !name.contains(where: { $0 == " " || $0 == "\n" }) else { throw QueuePlanError("queue name '\(name)' contains spaces") }
        var weight = 0
        if parts.count == 2 {
            guard let w = Int(parts[1]), w >= 0 else { throw QueuePlanError("queue '\(text)': weight must be a whole number ≥ 0") }
            weight = w
        }
        return QueueSpec(name: name, weight: weight)
    }
}

/// A queue configuration that cannot be used; `message` names the queue and what is wrong with it.
public struct QueuePlanError: Error, Sendable, CustomStringConvertible {
    /// The message shown at start-up.
    public let message: String
    /// A failure with `message` as its text.
    public init(_ message: String) { self.message = message }
    /// The message, unchanged.
    public var description: String { message }
}

/// The validated queue configuration.
public struct QueuePlan: Sendable, Equatable {
    /// `strict`: always the configured order; `weighted`: each fetch prefers a queue in
    /// proportion to its weight. The raw value is the `mode` the process info's `capsules` show.
    public enum Mode: String, Sendable { case strict, weighted }
    /// In configured order, no name twice.
    public let queues: [QueueSpec]
    /// Weighted as soon as any queue has a weight > 0 (Sidekiq 6.4.1's rule).
    public let mode: Mode

    /// Validates `specs`: at least one queue, no name twice, caps ≥ 1.
    public init(_ specs: [QueueSpec]) throws(QueuePlanError) {
        guard !specs.isEmpty else { throw QueuePlanError("no queues configured") }
        var seen = Set<String>()
        for spec in specs where !seen.insert(spec.name).inserted {
            throw QueuePlanError("queue '\(spec.name)' is configured twice")
        }
        for spec in specs {
            if let limit = spec.limit, limit < 1 { throw QueuePlanError("queue '\(spec.name)': limit must be ≥ 1") }
        }
        queues = specs
        mode = specs.contains { $0.weight > 0 } ? .weighted : .strict
    }

    /// Queue names in configured order (the process info's `queues`).
    public var names: [String] { queues.map(\.name) }

    /// Applies `NAME=N` per-queue caps.
    public func withLimits(_ limits: [String: Int]) throws(QueuePlanError) -> QueuePlan {
        var specs = queues
        for (name, limit) in limits {
            guard let i = specs.firstIndex(where: { $0.name == name }) else {
                throw QueuePlanError("limit for queue '\(name)', which is not in the queue list \(names)")
            }
            specs[i].limit = limit
        }
        return try QueuePlan(specs)
    }

    /// Weights as Sidekiq reports them in the process `info` (0 → 1 in weighted mode).
    public var effectiveWeights: [(String, Int)] {
        queues.map { ($0.name, mode == .weighted ? max($0.weight, 1) : 0) }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    public var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
