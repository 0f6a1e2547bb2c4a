import ExecutorProtocol
import SidekiqModel

// Decides what happens to a job after one delivery, with Sidekiq 6.4.1's
// retry semantics (sidekiq-compat §4) and the protocol's rule that an
// unavailable executor is never the job's fault. Pure: no I/O, time injected.

/// What the dispatcher does after a delivery.
public struct Decision: Sendable, Equatable {
    /// What happened, for logs and the `outcome` label of `courier_jobs_total`. `discarded`: dropped without the dead
    /// set (`dead: false`, a `discard` answer); `failed`: retries disabled; `requeued`: back to its queue, not the job's
    /// fault; `cancelled`: a cancel courier asked for (counted as failed, neither retried nor dead).
    public enum Event: String, Sendable { case done, retry, dead, discarded, requeued, failed, cancelled }
    /// What the next exchange writes to Redis for the job.
    public var action: CompletionAction
    /// The kind of decision, as counted and logged.
    public var event: Event
    /// Payload to send to the executor's exhausted endpoint afterwards (hooks, death handlers).
    public var notifyExhausted: [UInt8]?
    /// Why the job did not succeed, for the log line; nil on success.
    public var error: String?
    /// Only the death handlers run (retries disabled), not `sidekiq_retries_exhausted`.
    public var deathHandlersOnly = false
}

/// Sidekiq 6.4.1's retry semantics (sidekiq-compat §4) as pure decisions: a job, its payload and an outcome in,
/// the Redis action out. The dispatcher core calls it (so do recovered poison pills); the clock is injected.
public struct OutcomePolicy: Sendable {
    /// `max_retries` for `retry: true` (`--max-retries`, default 25); an integer `retry` in the payload wins.
    public var maxRetries: Int
    /// The time written to `failed_at`/`retried_at` and used for retry and dead scores.
    public var clock: WallClock

    /// A policy with Sidekiq's default of 25 retries and the system clock.
    public init(maxRetries: Int = RetrySchedule.defaultMaxRetries, clock: WallClock = .system) {
        self.maxRetries = maxRetries
        self.clock = clock
    }

    /// A job whose bytes could not be run at all.
    public func malformed(_ job: FetchedJob, payload: JobPayload?, reason: String) -> Decision {
        let now = clock.now()
        guard let payload else {
            if let value = try? JSONReader.parse(job.original) {
                // JSON, but not an object ([1], 42, null): stored raw, Sidekiq's
                // JobRecord would raise on it and the Web UI's Dead pages fail.
                let why = "job is a JSON \(value.kindName), not an object"
                return Decision(action: .kill(payload: Self.wrapNonObject(job, reason: why, now: now), at: now), event: .dead, error: why)
            }
            // Not JSON: Sidekiq puts the raw string in the dead set unchanged.
            return Decision(action: .bury(at: now), event: .dead, error: reason)
        }
        let edited = failureFields(payload, errorClass: "Courier::MalformedJob", message: reason, backtrace: [], queue: job.queue, now: now)
        return Decision(action: .kill(payload: edited.payload.raw, at: now), event: .dead, error: reason)
    }

    /// A dead-set entry Sidekiq's readers understand, holding the original
    /// bytes as its one argument (as the UI shows a non-JSON entry's raw
    /// string). Its jid is derived from the bytes, so a replay writes the same.
    static func wrapNonObject(_ job: FetchedJob, reason: String, now: Double) -> [UInt8] {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in job.original {
            a = (a ^ UInt64(byte)) &* 0x100_0000_01b3
            b = (b &+ UInt64(byte)) &* 0x9e37_79b9_7f4a_7c15
        }
        let hex = String(a, radix: 16), tail = String(b >> 32, radix: 16)
        let jid = String(repeating: "0", count: 16 - hex.count) + hex + String(repeating: "0", count: 8 - tail.count) + tail
        let raw = String(decoding: job.original, as: UTF8.self)
        let text =
            "{\"class\":\"Courier::MalformedJob\",\"args\":[\(JSONWriter.string(raw))],\"queue\":\(JSONWriter.string(job.queue))"
            + ",\"jid\":\"\(jid)\",\"retry\":false,\"error_class\":\"Courier::MalformedJob\",\"error_message\":\(JSONWriter.string(reason))"
            + ",\"failed_at\":\(JSONWriter.float(now)),\"retry_count\":0}"
        return Array(text.utf8)
    }

    /// `cancelRequested`: courier asked the executor to cancel this job by its jid (`courier:cancel`).
    public func decide(_ job: FetchedJob, payload: JobPayload, outcome: ExecutionOutcome, cancelRequested: Bool = false) -> Decision {
        switch outcome {
        case let .interrupted(reason, failure):
            let message = "\(failure.errorClass): \(failure.errorMessage)"
            if reason == CancelReason.cancel.rawValue && cancelRequested {
                // Cancelled on purpose: failed as Sidekiq counts it, but neither retried nor dead.
                return Decision(action: .acknowledgeFailed, event: .cancelled, error: "cancelled by request: \(message)")
            }
            if reason == CancelReason.shutdown.rawValue {
                // The executor is going away (its own shutdown): not the job's fault, as Sidekiq pushes back such a job.
                return Decision(action: .requeue, event: .requeued, error: "executor interrupted the job at its shutdown: \(message)")
            }
            // An interruption courier did not ask for (the executor's own time limit, a cancel by someone else):
            // the job raised, as far as courier knows.
            return jobFailed(job, payload: payload, failure: failure)
        case .succeeded:
            return Decision(action: .acknowledge, event: .done)
        case let .refused(_, reason):
            let now = clock.now()
            let edited = failureFields(payload, errorClass: "Courier::RefusedJob", message: reason, backtrace: [], queue: job.queue, now: now)
            return Decision(action: .kill(payload: edited.payload.raw, at: now), event: .dead, error: reason)
        case let .executorUnavailable(reason, _, _):
            return Decision(action: .requeue, event: .requeued, error: reason)
        case let .timedOut(after):
            let failure = JobFailure(
                errorClass: "Courier::JobTimeout",
                errorMessage: "no answer from the executor within \(after.components.seconds) s; the job may have run")
            return jobFailed(job, payload: payload, failure: failure)
        case let .failed(failure):
            return jobFailed(job, payload: payload, failure: failure)
        }
    }

    /// Sidekiq's `attempt_retry`: record the error, then retry, kill or drop.
    public func jobFailed(_ job: FetchedJob, payload: JobPayload, failure: JobFailure) -> Decision {
        let now = clock.now()
        let message = "\(failure.errorClass): \(failure.errorMessage)"
        let retrySetting = payload["retry"]
        // `retry: false`/`null` disables retries; `0` is truthy in Ruby (straight to dead).
        let retriesEnabled: Bool
        var maxAttempts = maxRetries
        switch retrySetting {
        case .none: retriesEnabled = true
        case .some(.null), .some(.bool(false)): retriesEnabled = false
        case let .some(value):
            retriesEnabled = true
            if let n = value.intValue, value.isIntegerLiteral { maxAttempts = n }
        }
        let queue = payload["retry_queue"]?.stringValue ?? job.queue
        let edited = failureFields(
            payload, errorClass: failure.errorClass, message: failure.errorMessage,
            backtrace: failure.backtrace, queue: queue, now: now)
        guard retriesEnabled else {
            // As Sidekiq's global retry handler: death handlers run, the job goes to neither set.
            return Decision(
                action: .acknowledgeFailed, event: .failed, notifyExhausted: edited.payload.raw, error: message,
                deathHandlersOnly: true)
        }
        if failure.retryAction == "discard" {
            return Decision(action: .acknowledgeFailed, event: .discarded, error: message)
        }
        var exhausted = edited.count >= maxAttempts || failure.retryAction == "kill"
        if let retryFor = payload["retry_for"]?.doubleValue, let firstFailure = edited.firstFailedAt, firstFailure + retryFor < now {
            exhausted = true
        }
        if !exhausted {
            let delay = RetrySchedule.delay(count: edited.count, customSeconds: failure.retryIn)
            return Decision(action: .retry(payload: edited.payload.raw, at: now + Double(delay)), event: .retry, error: message)
        }
        if payload["dead"]?.boolValue == false {
            return Decision(action: .acknowledgeFailed, event: .discarded, notifyExhausted: edited.payload.raw, error: message)
        }
        return Decision(action: .kill(payload: edited.payload.raw, at: now), event: .dead, notifyExhausted: edited.payload.raw, error: message)
    }

    struct EditedFailure {
        var payload: JobPayload
        var count: Int
        var firstFailedAt: Double?
    }

    /// Sets Sidekiq's error fields, keeping the payload's timestamp format
    /// (float seconds for 6.x/7.x jobs, integer milliseconds for 8.x jobs).
    func failureFields(
        _ payload: JobPayload, errorClass: String, message: String, backtrace: [String],
        queue: String, now: Double
    ) -> EditedFailure {
        let millis = payload["created_at"]?.isIntegerLiteral == true
        let stamp = millis ? String(Int(now * 1000)) : JSONWriter.float(now)
        var changes: [(String, String)] = [
            ("queue", JSONWriter.string(queue)),
            ("error_message", JSONWriter.string(String(message.prefix(10_000)))),
            ("error_class", JSONWriter.string(errorClass)),
        ]
        let count: Int
        var firstFailedAt = payload["failed_at"]?.doubleValue.map { millis ? $0 / 1000 : $0 }
        if let previous = payload["retry_count"]?.intValue {
            count = previous + 1
            changes.append(("retried_at", stamp))
        } else {
            count = 0
            changes.append(("failed_at", stamp))
            firstFailedAt = now
        }
        changes.append(("retry_count", String(count)))
        if let setting = payload["backtrace"], setting != .bool(false), setting != .null {
            let lines = setting.intValue.map { Array(backtrace.prefix(max(0, $0))) } ?? backtrace
            changes.append(("error_backtrace", JSONWriter.string(RetrySchedule.compressBacktrace(lines))))
        }
        return EditedFailure(payload: payload.editing(set: changes), count: count, firstFailedAt: firstFailedAt)
    }
}
