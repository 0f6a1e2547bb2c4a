import ExecutorProtocol
import SidekiqModel
import Synchronization

// Streamed batches over the HTTP loop (`POST /v1/jobs/stream`): one request
// carries jobs fetched together, and each job's outcome is reported the
// moment its line arrives, so a slow job delays nobody else's. Jobs without a
// line when the transfer ends (a cut stream, a refusal, a timeout) get the
// outcome StreamProtocol gives them: back to the queue, or timed out.

/// The line reader of one streamed answer. Fed only by the HTTP loop's thread
/// (curl's write callback of its one transfer), so its state needs no lock;
/// @unchecked because it travels to that thread inside the inbox. The answers
/// one read brings are handed over together: one wake-up of the dispatcher for
/// the jobs that ended together, not one each.
final class StreamLines: @unchecked Sendable {
    private var splitter = LineSplitter()
    private var arrived: [(Int, ExecutionOutcome)] = []
    private let progress: StreamProgress
    private let outcomes: ([(Int, ExecutionOutcome)]) -> Void

    fileprivate init(progress: StreamProgress, outcomes: @escaping ([(Int, ExecutionOutcome)]) -> Void) {
        self.progress = progress
        self.outcomes = outcomes
    }

    func feed(_ bytes: UnsafeRawBufferPointer) {
        splitter.feed(bytes) { line in
            switch StreamProtocol.read(line: line) {
            case let .job(index, result):
                if progress.answer(index) { arrived.append((index, result)) }
            case .done:
                progress.complete()
            case .ignored:
                break
            }
        }
        guard !arrived.isEmpty else { return }
        let batch = arrived
        arrived.removeAll(keepingCapacity: true)
        outcomes(batch)
    }
}

extension HTTPExecutor {
    /// POSTs jobs to `/v1/jobs/stream`; `outcome(index, …)` runs once per job, on the
    /// executor thread, as its answer arrives (or when the transfer ends without one).
    /// Each job's timeout counts from the request's start; jobs that together exceed
    /// `maxBatchBytes` go in several streams.
    public func submitStream(_ requests: [ExecutionRequest], outcomes: @escaping @Sendable ([(Int, ExecutionOutcome)]) -> Void) {
        let groups = Self.batchGroups(sizes: requests.map(\.body.count), limit: configuration.maxBatchBytes)
        for range in groups {
            let offset = range.lowerBound
            postStream(Array(requests[range])) { results in outcomes(offset == 0 ? results : results.map { (offset + $0.0, $0.1) }) }
        }
    }

    private func postStream(_ requests: [ExecutionRequest], outcomes: @escaping @Sendable ([(Int, ExecutionOutcome)]) -> Void) {
        let timeout = requests.map { $0.timeout ?? configuration.jobTimeout }.max() ?? configuration.jobTimeout
        let progress = StreamProgress(count: requests.count)
        let lines = StreamLines(progress: progress, outcomes: outcomes)
        let stream = ExecutionRequest(
            path: StreamProtocol.path, body: StreamProtocol.body(requests),
            jid: requests.map(\.jid).joined(separator: ","), queue: requests[0].queue, attempt: 1, timeout: timeout)
        post(stream, lines: lines) { result in
            let (unanswered, complete) = progress.finish()
            guard !unanswered.isEmpty else { return }
            let leftover = StreamProtocol.unanswered(result: result, complete: complete, jobTimeout: timeout)
            outcomes(unanswered.map { ($0, leftover) })
        }
    }
}

/// Which jobs of one stream have their answer: each is reported exactly once.
private final class StreamProgress: Sendable {
    private struct State {
        var answered: [Bool]
        var complete = false
        var finished = false
    }
    private let state: Mutex<State>

    init(count: Int) { state = Mutex(State(answered: Array(repeating: false, count: count))) }

    /// Marks job `index` answered; false for an index out of range or answered before (ignored).
    func answer(_ index: Int) -> Bool {
        state.withLock { s in
            guard !s.finished, index < s.answered.count, !s.answered[index] else { return false }
            s.answered[index] = true
            return true
        }
    }

    func complete() { state.withLock { $0.complete = true } }

    /// The transfer ended: the jobs still without an answer, and whether the final line came.
    func finish() -> ([Int], Bool) {
        state.withLock { s in
            s.finished = true
            return (s.answered.indices.filter { !s.answered[$0] }, s.complete)
        }
    }
}
