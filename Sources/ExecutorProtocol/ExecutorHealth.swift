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

    /// Jobs one stream should carry: one process's share of the capacity, within the executor's limit.
    public var jobsPerStream: Int {
        let share = (capacity ?? 1) / max(1, processes ?? 1)
        return max(1, min(share, maxStreamJobs ?? 100))
    }
}
