import SidekiqModel

// Protocol v1's streamed batches (`POST /v1/jobs/stream`, docs/protocol.md)
// as values: the request body, the answer's lines read one at a time, and
// what the jobs without a line get when the transfer ends. No transport here:
// the HTTP client feeds bytes in as they arrive and reports each outcome.

/// One line of a streamed answer, read.
public enum StreamLine: Sendable, Equatable {
    /// The answer for `jobs[index]`, exactly as `/v1/jobs` would have given it.
    case job(index: Int, outcome: ExecutionOutcome)
    /// The final line: the stream is complete (`count` jobs in the request).
    case done(count: Int)
    /// Not a line this reader knows (not JSON, no `index`): ignored, as the protocol asks for unknown content.
    case ignored
}

public enum StreamProtocol {
    public static let path = "/v1/jobs/stream"
    /// The feature name in `GET /v1/health`'s `features`.
    public static let feature = "stream"
    /// The longest line read; a longer one is cut off and ignored (a 422's backtrace fits many times over).
    public static let maxLineBytes = 4 << 20

    /// Reads one line (without its `\n`).
    public static func read(line: ArraySlice<UInt8>) -> StreamLine {
        guard let json = try? JSONReader.parse(Array(line)) else { return .ignored }
        if json["done"]?.boolValue == true { return .done(count: json["count"]?.intValue ?? -1) }
        guard let index = json["index"]?.intValue, index >= 0, let code = json["code"]?.intValue else { return .ignored }
        return .job(index: index, outcome: OutcomeClassifier.classify(status: code, json: json, retryAfter: nil))
    }

    /// What a job without a line gets once the transfer is over. `complete`: the final line was read.
    public static func unanswered(result: HTTPResult, complete: Bool, jobTimeout: Duration) -> ExecutionOutcome {
        switch result {
        case let .response(status, body, retryAfter) where status != 200:
            // The whole request was answered at once: it applies to every job alike.
            if status == 404 { return .executorUnavailable(reason: "executor has no \(path) endpoint", retryAfter: nil, mayHaveRun: false) }
            let outcome = OutcomeClassifier.classify(status: status, body: body, retryAfter: retryAfter)
            if case let .refused(_, reason) = outcome {
                // The envelope, not a job, was refused (e.g. over max_stream_jobs): not the jobs' fault.
                return .executorUnavailable(reason: "executor refused the stream: \(reason)", retryAfter: nil, mayHaveRun: false)
            }
            return outcome
        case .response:
            // A 200 whose lines stopped before this job's: the stream was cut (or the executor broke its promise).
            let why = complete ? "the executor's stream ended without this job's answer" : "the executor's stream was cut before this job's answer"
            return .executorUnavailable(reason: why, retryAfter: nil, mayHaveRun: true)
        case .transportError:
            return OutcomeClassifier.outcome(of: result, jobTimeout: jobTimeout)
        }
    }

    /// The request body of `/v1/jobs/stream` and `/v1/jobs/batch` alike: each payload as a JSON string of its exact bytes,
    /// its queue, and (when known) its `tenant` and valid `traceparent`.
    public static func body(_ requests: [ExecutionRequest]) -> [UInt8] {
        var body = Array(#"{"jobs":["#.utf8)
        body.reserveCapacity(requests.reduce(64) { $0 + $1.body.count + 64 })
        for (i, request) in requests.enumerated() {
            if i > 0 { body.append(UInt8(ascii: ",")) }
            body.append(contentsOf: #"{"payload":"#.utf8)
            JSONWriter.appendString(request.body, to: &body)
            body.append(contentsOf: #","queue":"#.utf8)
            JSONWriter.appendString(Array(request.queue.utf8), to: &body)
            if let tenant = request.tenant {
                body.append(contentsOf: #","tenant":"#.utf8)
                JSONWriter.appendString(Array(tenant.utf8), to: &body)
            }
            if let traceparent = request.traceparent {
                body.append(contentsOf: #","traceparent":""#.utf8)
                body.append(contentsOf: traceparent.utf8)  // validated: hex and dashes only, nothing to escape
                body.append(UInt8(ascii: "\""))
            }
            body.append(UInt8(ascii: "}"))
        }
        body.append(contentsOf: "]}".utf8)
        return body
    }
}

/// Splits bytes that arrive in pieces into `\n`-ended lines.
public struct LineSplitter: Sendable {
    private var partial: [UInt8] = []
    private var overlong = false
    private let maxLineBytes: Int

    public init(maxLineBytes: Int = StreamProtocol.maxLineBytes) { self.maxLineBytes = maxLineBytes }

    /// Feeds the next bytes; calls `line` for every line they complete (a line over the limit is dropped).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, line: (ArraySlice<UInt8>) -> Void) {
        var start = 0
        for (i, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            if partial.isEmpty && !overlong {
                line(Array(bytes[start..<i])[...])
            } else {
                append(bytes[start..<i])
                if !overlong { line(partial[...]) }
                partial.removeAll(keepingCapacity: true)
                overlong = false
            }
            start = i + 1
        }
        if start < bytes.count { append(bytes[start...]) }
    }

    private mutating func append(_ bytes: Slice<UnsafeRawBufferPointer>) {
        guard !overlong else { return }
        if partial.count + bytes.count > maxLineBytes {
            overlong = true
            partial.removeAll()
        } else {
            partial.append(contentsOf: bytes)
        }
    }
}
