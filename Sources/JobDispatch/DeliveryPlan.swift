import ExecutorProtocol

// How jobs fetched together travel to the executor (`--batch`): one request
// each, `/v1/jobs/batch` requests, or streams (`/v1/jobs/stream`, each job's
// answer as it ends) sized from what the executor's health says. Pure: the
// dispatcher asks it for every delivery.

/// `--batch`: how many jobs fetched together share one request.
public enum BatchSetting: Sendable, Equatable {
    /// Streams when the executor offers them: the jobs fetched together in as
    /// few as its `max_stream_jobs` allows, one per executor process at least;
    /// one job per request otherwise. The default.
    case auto
    /// At most this many per request (1: one job per request), through streams
    /// when the executor offers them, else through `/v1/jobs/batch`.
    case fixed(Int)
}

/// The request one group of jobs goes in.
enum DeliveryRoute: Sendable, Equatable {
    case single, batch, stream
}

enum DeliveryPlan {
    /// The most jobs one request carries (1: one job per request).
    static func perRequest(setting: BatchSetting, health: ExecutorHealth?) -> Int {
        let streams = health?.offersStreams == true
        switch setting {
        case .auto: return streams ? health!.jobsPerStream : 1
        case let .fixed(n): return streams ? min(n, health?.maxStreamJobs ?? n) : n
        }
    }

    /// Splits `count` jobs (in fetch order) into requests. A single job always goes
    /// alone (an idle queue's pickup is never held back for company); `count` jobs
    /// go in as few requests as the size allows, of near-equal size.
    static func groups(count: Int, setting: BatchSetting, health: ExecutorHealth?) -> [(DeliveryRoute, Range<Int>)] {
        guard count > 1 else { return count == 1 ? [(.single, 0..<1)] : [] }
        let streams = health?.offersStreams == true
        let perRequest = perRequest(setting: setting, health: health)
        guard perRequest > 1 else { return (0..<count).map { (.single, $0..<$0 + 1) } }
        let route: DeliveryRoute = streams ? .stream : .batch
        // Streams are spread over the executor's processes (Puma workers) too.
        let spread = streams && setting == .auto ? min(count, health!.streamsAtLeast) : 1
        let requests = max((count + perRequest - 1) / perRequest, spread)
        var groups: [(DeliveryRoute, Range<Int>)] = []
        var start = 0
        for i in 0..<requests {
            let size = count / requests + (i < count % requests ? 1 : 0)
            groups.append((size == 1 ? .single : route, start..<start + size))
            start += size
        }
        return groups
    }
}
