import SidekiqModel

// What an executor says about itself in `GET /v1/health` (docs/protocol.md):
// the optional endpoints it implements and, with streams, how many jobs it
// runs at once. The dispatcher sizes its deliveries from it.

/// A `200` health answer, read.
public struct ExecutorHealth: Sendable, Equatable {
    /// Optional endpoints implemented: `batch`, `cancel`, `stream`.
    public var features: Set<String>
    /// Jobs run at once through streams, in all the executor's processes.
    public var capacity: Int?
    /// Most jobs one `/v1/jobs/stream` request may carry.
    public var maxStreamJobs: Int?
    /// Processes sharing `capacity` (Puma workers); each stream runs in one.
    public var processes: Int?

    public init(features: Set<String>, capacity: Int? = nil, maxStreamJobs: Int? = nil, processes: Int? = nil) {
        self.features = features
        self.capacity = capacity
        self.maxStreamJobs = maxStreamJobs
        self.processes = processes
    }

    /// nil unless `answer` is a `200` with a JSON body.
    public init?(answer: HTTPResult) {
        guard case let .response(200, body, _) = answer, let json = try? JSONReader.parse(body) else { return nil }
        func positive(_ key: String) -> Int? { json[key]?.intValue.flatMap { $0 > 0 ? $0 : nil } }
        self.init(
            features: Set(json["features"]?.arrayValue?.compactMap(\.stringValue) ?? []), capacity: positive("capacity"),
            maxStreamJobs: positive("max_stream_jobs"), processes: positive("processes"))
    }

    /// Streams are offered and sized.
    public var offersStreams: Bool { features.contains(StreamProtocol.feature) }

    /// The most jobs one stream carries: the executor's limit. Not its capacity: jobs
    /// past it wait in the executor, and fewer, fuller streams cost less per job on
    /// both sides (each request costs as much as several no-op jobs).
    public var jobsPerStream: Int { max(1, maxStreamJobs ?? 100) }

    /// Streams one delivery of several jobs is spread over at least: one per process.
    public var streamsAtLeast: Int { max(1, processes ?? 1) }
}
