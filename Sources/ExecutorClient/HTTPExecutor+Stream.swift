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
/// @unchecked because it travels to that thread inside the inbox.
final class StreamLines: @unchecked Sendable {
    private var splitter = LineSplitter()
    private let onLine: (ArraySlice<UInt8>) -> Void

    init(onLine: @escaping (ArraySlice<UInt8>) -> Void) { self.onLine = onLine }

    func feed(_ bytes: UnsafeRawBufferPointer) { splitter.feed(bytes, line: onLine) }
}

extension HTTPExecutor {
    /// POSTs jobs to `/v1/jobs/stream`; `outcome(index, …)` runs once per job, on the
    /// executor thread, as its answer arrives (or when the transfer ends without one).
    /// Each job's timeout counts from the request's start; jobs that together exceed
    /// `maxBatchBytes` go in several streams.
    public func submitStream(_ requests: [ExecutionRequest], outcome: @escaping @Sendable (Int, ExecutionOutcome) -> Void) {
        let groups = Self.batchGroups(sizes: requests.map(\.body.count), limit: configuration.maxBatchBytes)
        for range in groups {
            let offset = range.lowerBound
            postStream(Array(requests[range])) { index, result in outcome(offset + index, result) }
        }
    }

    private func postStream(_ requests: [ExecutionRequest], outcome: @escaping @Sendable (Int, ExecutionOutcome) -> Void) {
        let timeout = requests.map { $0.timeout ?? configuration.jobTimeout }.max() ?? configuration.jobTimeout
        let progress = StreamProgress(count: requests.count)
        let lines = StreamLines { line in
            switch StreamProtocol.read(line: line) {
            case let .job(index, result):
                if progress.answer(index) { outcome(index, result) }
            case .done:
                progress.complete()
            case .ignored:
                break
            }
        }
        let stream = ExecutionRequest(
            path: StreamProtocol.path, body: StreamProtocol.body(requests),
            jid: requests.map(\.jid).joined(separator: ","), queue: requests[0].queue, attempt: 1, timeout: timeout)
        post(stream, lines: lines) { result in
            let (unanswered, complete) = progress.finish()
            guard !unanswered.isEmpty else { return }
            let leftover = StreamProtocol.unanswered(result: result, complete: complete, jobTimeout: timeout)
            for index in unanswered { outcome(index, leftover) }
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
