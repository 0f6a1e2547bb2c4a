import SidekiqModel

// Protocol v1's cancel, as values: why courier asks the executor to interrupt
// a running job, the request body, how the executor's answer reads, and the
// `features` list of `GET /v1/health` that says whether to ask at all.

/// Why courier gave up on a running job.
public enum CancelReason: String, Sendable, CaseIterable {
    /// The shutdown deadline passed; the job goes back to its queue.
    case shutdown
    /// The job timeout passed; the attempt counted as failed (`Courier::JobTimeout`).
    case timeout
    /// Someone asked for the job to be cancelled (`courier cancel JID`, `Courier.cancel(jid)`).
    case cancel
}

/// How a `POST /v1/jobs/cancel` ended.
public enum CancelResult: Sendable, Equatable {
    /// `200 {"status":"cancelled"}`: a running job with that jid was interrupted.
    case cancelled
    /// `404 {"status":"not_running"}`: the executor runs no job with that jid.
    case notRunning
    /// Any other `404`: the executor does not have the endpoint.
    case unsupported
    /// Anything else (401, 5xx, no answer, …).
    case failed(String)

    /// The `result` label of `courier_cancels_total`.
    public var label: String {
        switch self {
        case .cancelled: "cancelled"
        case .notRunning: "not_running"
        case .unsupported: "unsupported"
        case .failed: "failed"
        }
    }
}

/// Protocol v1's cancel endpoint: its path, the health feature that advertises it, the body, and how an answer reads.
public enum CancelProtocol {
    /// Where cancels are POSTed, relative to the executor's base URL.
    public static let path = "/v1/jobs/cancel"
    /// The feature name in `GET /v1/health`'s `features`.
    public static let feature = "cancel"

    /// `{"jid":"…","reason":"…"}`.
    public static func body(jid: String, reason: CancelReason) -> [UInt8] {
        Array("{\"jid\":\(JSONWriter.string(jid)),\"reason\":\"\(reason.rawValue)\"}".utf8)
    }

    /// Reads the answer to a cancel POST; a `.failed` message is meant for the log (a 401 points at `COURIER_SECRET`).
    public static func result(of answer: HTTPResult) -> CancelResult {
        switch answer {
        case let .response(200, _, _):
            return .cancelled
        case let .response(404, body, _):
            return (try? JSONReader.parse(body))?["status"]?.stringValue == "not_running" ? .notRunning : .unsupported
        case let .response(401, _, _):
            return .failed("executor rejected the request signature (HTTP 401): check COURIER_SECRET on both sides")
        case let .response(status, _, _):
            return .failed("executor answered HTTP \(status)")
        case let .transportError(reason, _, _):
            return .failed("executor unreachable: \(reason)")
        }
    }

    /// The `features` of a `200` health answer (`[]` when it lists none); nil when there was no such answer.
    public static func features(ofHealth answer: HTTPResult) -> Set<String>? {
        ExecutorHealth(answer: answer)?.features
    }
}
