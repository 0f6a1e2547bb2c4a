// How one delivery ended, as protocol v1 defines it: the closed set of
// outcomes the dispatcher decides on, and how an HTTP answer (status, body,
// Retry-After) maps to one.
import SidekiqModel

/// What the executor said the job did (the `422` body).
public struct JobFailure: Sendable, Equatable {
    /// The Ruby exception class name, written to the job's `error_class`.
    public var errorClass: String
    /// The exception message, written to the job's `error_message`.
    public var errorMessage: String
    /// The exception's backtrace lines, for `error_backtrace` when the job's `backtrace` option asks for it.
    public var backtrace: [String]
    /// The job's own `sidekiq_retry_in` answer in seconds, if any.
    public var retryIn: Int?
    /// The job's own `sidekiq_retry_in` answer as an action: `kill` or `discard`.
    public var retryAction: String?

    /// A failure as the executor reported it; `retryIn` and `retryAction` are nil unless the job's `sidekiq_retry_in` answered.
    public init(errorClass: String, errorMessage: String, backtrace: [String] = [], retryIn: Int? = nil, retryAction: String? = nil) {
        self.errorClass = errorClass
        self.errorMessage = errorMessage
        self.backtrace = backtrace
        self.retryIn = retryIn
        self.retryAction = retryAction
    }
}

/// Every way one delivery of a job can end. Callers switch over all of them.
public enum ExecutionOutcome: Sendable, Equatable {
    /// `200`: perform returned.
    case succeeded
    /// `422`: the job raised.
    case failed(JobFailure)
    /// `400`/`413`: the executor refused the request; nothing ran, and it never could.
    case refused(status: Int, reason: String)
    /// Not the job's fault (connect error, 401, 429, 5xx, …): nothing ran, or we cannot tell it did.
    /// `mayHaveRun` is true when the connection broke after the request was sent.
    case executorUnavailable(reason: String, retryAfter: Duration?, mayHaveRun: Bool)
    /// No answer within the job timeout: the job may have run.
    case timedOut(after: Duration)
    /// `409`: the executor interrupted the running job (protocol v1 cancel). `reason` is the
    /// executor's: `shutdown`, `timeout` or `cancel` (another value is kept as it came);
    /// `failure` is what the job raised when it was interrupted.
    case interrupted(reason: String, failure: JobFailure)

    /// True when the executor, not the job, is at fault (the breaker counts these).
    /// An interruption at the executor's own shutdown is; one courier asked for is not.
    public var isExecutorFailure: Bool {
        switch self {
        case .executorUnavailable, .timedOut: return true
        case let .interrupted(reason, _): return reason == CancelReason.shutdown.rawValue
        case .succeeded, .failed, .refused: return false
        }
    }
}

/// Maps an HTTP answer to an outcome, as protocol v1 specifies.
public enum OutcomeClassifier {
    /// The outcome of a single-job POST.
    public static func outcome(of result: HTTPResult, jobTimeout: Duration) -> ExecutionOutcome {
        switch result {
        case let .response(status, body, retryAfter):
            return classify(status: status, body: body, retryAfter: retryAfter)
        case let .transportError(reason, sent, timedOut):
            if timedOut {
                return sent
                    ? .timedOut(after: jobTimeout)
                    : .executorUnavailable(reason: "executor connect timed out: \(reason)", retryAfter: nil, mayHaveRun: false)
            }
            return .executorUnavailable(reason: "executor unreachable: \(reason)", retryAfter: nil, mayHaveRun: sent)
        }
    }

    /// One outcome per job of a `/v1/jobs/batch` POST. Anything but a valid
    /// 200 envelope applies to every job of the batch alike.
    public static func batchOutcomes(of result: HTTPResult, count: Int, jobTimeout: Duration) -> [ExecutionOutcome] {
        guard case let .response(status, body, _) = result, status == 200 else {
            if case let .response(status, body, retryAfter) = result {
                let single = classify(status: status, body: body, retryAfter: retryAfter)
                switch single {
                case let .refused(_, reason):
                    // The envelope, not a job, was refused (e.g. over --max-batch-jobs): not the jobs' fault.
                    return Array(
                        repeating: .executorUnavailable(reason: "executor refused the batch: \(reason)", retryAfter: nil, mayHaveRun: false),
                        count: count)
                default:
                    if status == 404 {
                        return Array(
                            repeating: .executorUnavailable(
                                reason: "executor has no /v1/jobs/batch endpoint: use --batch 1", retryAfter: nil, mayHaveRun: false), count: count)
                    }
                    return Array(repeating: single, count: count)
                }
            }
            return Array(repeating: outcome(of: result, jobTimeout: jobTimeout), count: count)
        }
        guard let results = (try? JSONReader.parse(body))?["results"]?.arrayValue, results.count == count else {
            return Array(
                repeating: .executorUnavailable(reason: "executor's batch answer does not have \(count) results", retryAfter: nil, mayHaveRun: true),
                count: count)
        }
        return results.map { item in
            classify(status: item["code"]?.intValue ?? 500, json: item, retryAfter: nil)
        }
    }

    /// The outcome of one HTTP answer; `retryAfter` is the raw `Retry-After` header, if any.
    public static func classify(status: Int, body: [UInt8], retryAfter: String?) -> ExecutionOutcome {
        classify(
            status: status, json: (status == 422 || status == 400 || status == 413 || status == 409) ? (try? JSONReader.parse(body)) : nil,
            rawBody: body, retryAfter: retryAfter)
    }

    static func classify(status: Int, json: JSONValue?, rawBody: [UInt8] = [], retryAfter: String?) -> ExecutionOutcome {
        switch status {
        case 200..<300:
            return .succeeded
        case 422:
            return .failed(parseFailure(json, rawBody: rawBody))
        case 409 where json?["status"]?.stringValue == "interrupted":
            let reason = json?["reason"]?.stringValue ?? CancelReason.cancel.rawValue
            var failure = parseFailure(json, rawBody: rawBody)
            failure.retryIn = nil
            failure.retryAction = nil
            return .interrupted(reason: reason, failure: failure)
        case 400, 413:
            let reason = json?["reason"]?.stringValue ?? String(decoding: rawBody.prefix(500), as: UTF8.self)
            return .refused(status: status, reason: "executor refused the job (HTTP \(status)): \(reason)")
        case 401:
            return .executorUnavailable(
                reason: "executor rejected the request signature (HTTP 401): check COURIER_SECRET on both sides",
                retryAfter: nil, mayHaveRun: false)
        case 429, 503:
            return .executorUnavailable(reason: "executor busy (HTTP \(status))", retryAfter: parseRetryAfter(retryAfter), mayHaveRun: false)
        default:
            return .executorUnavailable(reason: "executor answered HTTP \(status)", retryAfter: parseRetryAfter(retryAfter), mayHaveRun: false)
        }
    }

    /// The longest `retry_in` taken from an answer, in seconds.
    static let maxRetryIn = 1_000_000_000

    static func parseFailure(_ json: JSONValue?, rawBody: [UInt8]) -> JobFailure {
        guard let json else {
            return JobFailure(
                errorClass: "Courier::BadExecutorAnswer",
                errorMessage: "executor answered 422 with a body that is not JSON: \(String(decoding: rawBody.prefix(200), as: UTF8.self))")
        }
        var retryIn: Int? = nil
        // Capped (a job may answer 10**21 or 1e400, and Int(Double) traps on
        // what does not fit): ~31 years is "never" for a retry set entry.
        if let seconds = json["retry_in"]?.doubleValue, seconds > 0 {
            retryIn = seconds < Double(Self.maxRetryIn) ? Int(seconds) : Self.maxRetryIn
        }
        return JobFailure(
            errorClass: json["error_class"]?.stringValue ?? "StandardError",
            errorMessage: json["error_message"]?.stringValue ?? "",
            backtrace: json["backtrace"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            retryIn: retryIn,
            retryAction: json["retry_action"]?.stringValue)
    }

    /// `Retry-After` in seconds, at most an hour (HTTP dates are not used by executors; ignored).
    public static func parseRetryAfter(_ value: String?) -> Duration? {
        guard let value, let seconds = Int(value.trimmingCharacters()), seconds >= 0 else { return nil }
        return .seconds(min(seconds, 3600))
    }
}

extension String {
    package func trimmingCharacters() -> String {
        String(
            drop { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
                .reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }.reversed())
    }
}
