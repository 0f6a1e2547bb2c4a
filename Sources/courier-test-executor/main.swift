// A small recording executor for tests and benchmarks: answers every job
// with 200 (optionally after a delay), and reports at GET /stats how many
// jobs it saw, the most it ran at once, and pickup latency (now − the job's
// enqueued_at) percentiles. A job whose first argument is an object can ask
// for more: {"sleep_ms": N} runs N ms, {"fail": "message"} answers 422,
// {"refuse": "reason"} answers 400. It implements protocol v1's cancel
// (`POST /v1/jobs/cancel`, advertised in /v1/health unless --no-cancel): a
// sleeping job it interrupts answers 409; GET /cancels lists every cancel
// request it got. With --secret, POSTs must carry a valid Courier-Signature.
// GET /headers lists, by jid, the optional `traceparent` and `Courier-Tenant`
// headers each /v1/jobs request carried (issue 12's tests read them).
// /stats's "classes" gives, per job class (an ActiveJob's wrapped class), the
// most it ran at once and the wall-clock start of each job (the limiter
// tests check their limits against these, the executor's own record).
// Not part of the product.
import Dispatch
import ExecutorClient
import Glibc
import MiniHTTP
import SidekiqModel
import Synchronization

final class Recorder: Sendable {
    private struct State: ~Copyable {
        var received = 0
        var current = 0
        var maxConcurrent = 0
        var interrupted = 0
        var latencies: [Double] = []
        /// Every cancel request: jid, reason, whether a running job was interrupted.
        var cancels: [(String, String, Bool)] = []
        /// By jid: the `traceparent` and `Courier-Tenant` headers received ("" when absent).
        var headers: [String: (String, String)] = [:]
        /// By job class: running now, the most at once, and each job's start (epoch seconds; the first 100,000).
        var classes: [String: (current: Int, max: Int, starts: [Double])] = [:]
    }
    private let state = Mutex(State())

    func begin(latency: Double?, jobClass: String, at start: Double) {
        state.withLock { s in
            s.received += 1
            s.current += 1
            s.maxConcurrent = max(s.maxConcurrent, s.current)
            if let latency { s.latencies.append(latency) }
            var c = s.classes[jobClass] ?? (0, 0, [])
            c.current += 1
            c.max = max(c.max, c.current)
            if c.starts.count < 100_000 { c.starts.append(start) }
            s.classes[jobClass] = c
        }
    }
    func end(interrupted: Bool, jobClass: String) {
        state.withLock { s in
            s.current -= 1
            s.classes[jobClass]?.current -= 1
            if interrupted { s.interrupted += 1 }
        }
    }
    func cancelled(jid: String, reason: String, found: Bool) { state.withLock { $0.cancels.append((jid, reason, found)) } }
    func reset() { state.withLock { $0 = State() } }
    func headers(jid: String, traceparent: String?, tenant: String?) {
        guard traceparent != nil || tenant != nil else { return }
        state.withLock { $0.headers[jid] = (traceparent ?? "", tenant ?? "") }
    }
    func headersJSON() -> String {
        state.withLock { s in
            "{"
                + s.headers.map {
                    "\(JSONWriter.string($0.key)):{\"traceparent\":\(JSONWriter.string($0.value.0)),\"tenant\":\(JSONWriter.string($0.value.1))}"
                }.joined(separator: ",") + "}"
        }
    }

    func statsJSON() -> String {
        state.withLock { s in
            let sorted = s.latencies.sorted()
            func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
            return "{\"received\":\(s.received),\"max_concurrency\":\(s.maxConcurrent),\"running\":\(s.current),\"interrupted\":\(s.interrupted),"
                + "\"latency_samples\":\(sorted.count),"
                + "\"latency_p50_ms\":\(pct(0.5)),\"latency_p99_ms\":\(pct(0.99)),\"latency_max_ms\":\(sorted.last.map { $0 * 1000 } ?? 0),"
                + "\"classes\":{"
                + s.classes.map { name, c in
                    "\(JSONWriter.string(name)):{\"max_concurrency\":\(c.max),\"running\":\(c.current),\"starts\":["
                        + c.starts.map { JSONWriter.float($0) }.joined(separator: ",") + "]}"
                }.joined(separator: ",") + "}}"
        }
    }

    func cancelsJSON() -> String {
        state.withLock { s in
            "["
                + s.cancels.map { "{\"jid\":\(JSONWriter.string($0.0)),\"reason\":\(JSONWriter.string($0.1)),\"found\":\($0.2)}" }
                .joined(separator: ",") + "]"
        }
    }
}

/// Jobs sleeping now, by jid, so a cancel can wake them.
final class RunningSleeps: Sendable {
    final class Sleep: Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        let reason = Mutex<String?>(nil)
    }
    private let table = Mutex<[String: [Sleep]]>([:])

    /// Sleeps up to `micros`; returns the cancel reason if a cancel ended it early.
    func sleep(jid: String, micros: UInt32) -> String? {
        let sleep = Sleep()
        table.withLock { $0[jid, default: []].append(sleep) }
        _ = sleep.semaphore.wait(timeout: .now() + .microseconds(Int(micros)))
        table.withLock { t in
            t[jid]?.removeAll { $0 === sleep }
            if t[jid]?.isEmpty == true { t[jid] = nil }
        }
        return sleep.reason.withLock { $0 }
    }

    /// Interrupts every sleeping job with that jid; false if there was none.
    func interrupt(jid: String, reason: String) -> Bool {
        let sleeps = table.withLock { $0[jid] ?? [] }
        for sleep in sleeps {
            let first = sleep.reason.withLock { r -> Bool in
                guard r == nil else { return false }
                r = reason
                return true
            }
            if first { sleep.semaphore.signal() }
        }
        return !sleeps.isEmpty
    }
}

struct Options {
    var port = 0
    var delayMicros: UInt32 = 0
    var cancel = true
    var secret: [UInt8]?
}

func parseArguments() -> Options {
    var options = Options()
    var args = CommandLine.arguments.dropFirst()
    while let arg = args.popFirst() {
        switch arg {
        case "--port": options.port = Int(args.popFirst() ?? "") ?? 0
        case "--delay-ms": options.delayMicros = UInt32((Double(args.popFirst() ?? "") ?? 0) * 1000)
        case "--no-cancel": options.cancel = false
        case "--secret": options.secret = Array((args.popFirst() ?? "").utf8)
        default:
            print("usage: courier-test-executor [--port N] [--delay-ms MS] [--no-cancel] [--secret SECRET]")
            exit(64)
        }
    }
    return options
}

/// The protocol's signature check: t within 300 s, any v1 matches.
func signatureValid(_ header: String?, body: [UInt8], secret: [UInt8]) -> Bool {
    guard let header else { return false }
    var timestamp: Int?
    var candidates: [String] = []
    for part in header.split(separator: ",") {
        if part.hasPrefix("t=") { timestamp = Int(part.dropFirst(2)) }
        if part.hasPrefix("v1=") { candidates.append(String(part.dropFirst(3)).lowercased()) }
    }
    guard let timestamp, abs(time(nil) - timestamp) <= 300 else { return false }
    let expected = RequestSigner(secret: secret).headerValue(body: body, timestamp: timestamp)
    return candidates.contains { "t=\(timestamp),v1=\($0)" == expected }
}

/// The exception a job interrupted for `reason` raises, as the Ruby sidecar names them.
func interruptionClass(_ reason: String) -> String {
    switch reason {
    case "shutdown": "Sidekiq::Shutdown"
    case "timeout": "Courier::JobTimeout"
    default: "Courier::JobCancelled"
    }
}

func runJob(_ request: HTTPRequest, options: Options, recorder: Recorder, sleeps: RunningSleeps) -> HTTPResponse {
    let payload = try? JobPayload(raw: request.body)
    var latency: Double?
    if let enqueued = payload?["enqueued_at"]?.doubleValue { latency = WallClock.system.now() - enqueued }
    let directive = payload?["args"]?.arrayValue?.first
    if let reason = directive?["refuse"]?.stringValue {
        return .json(400, "{\"status\":\"refused\",\"reason\":\(JSONWriter.string(reason))}")
    }
    let jobClass = payload?.displayClass ?? "unknown"
    recorder.begin(latency: latency, jobClass: jobClass, at: WallClock.system.now())
    if let jid = payload?.jid { recorder.headers(jid: jid, traceparent: request.header("traceparent"), tenant: request.header("Courier-Tenant")) }
    var micros = options.delayMicros
    if let ms = directive?["sleep_ms"]?.doubleValue, ms > 0 { micros = UInt32(min(ms, 3_600_000) * 1000) }
    var interruptedBy: String?
    if micros > 0 {
        if options.cancel, let jid = payload?.jid { interruptedBy = sleeps.sleep(jid: jid, micros: micros) } else { usleep(micros) }
    }
    recorder.end(interrupted: interruptedBy != nil, jobClass: jobClass)
    if let reason = interruptedBy {
        return .json(
            409,
            "{\"status\":\"interrupted\",\"reason\":\(JSONWriter.string(reason)),"
                + "\"error_class\":\(JSONWriter.string(interruptionClass(reason))),\"error_message\":\"interrupted (\(reason))\","
                + "\"backtrace\":[\"courier-test-executor\"]}")
    }
    if let message = directive?["fail"]?.stringValue {
        return .json(
            422,
            "{\"status\":\"failed\",\"error_class\":\"TestExecutor::Failure\",\"error_message\":\(JSONWriter.string(message)),"
                + "\"backtrace\":[\"courier-test-executor\"],\"retry_in\":null,\"retry_action\":null}")
    }
    return .json(200, "{\"status\":\"ok\"}")
}

func cancelJob(_ request: HTTPRequest, recorder: Recorder, sleeps: RunningSleeps) -> HTTPResponse {
    guard let body = try? JSONReader.parse(request.body), let jid = body["jid"]?.stringValue,
        let reason = body["reason"]?.stringValue, ["shutdown", "timeout", "cancel"].contains(reason)
    else {
        return .json(400, "{\"status\":\"refused\",\"reason\":\"body must be {\\\"jid\\\":…,\\\"reason\\\":\\\"shutdown|timeout|cancel\\\"}\"}")
    }
    let found = sleeps.interrupt(jid: jid, reason: reason)
    recorder.cancelled(jid: jid, reason: reason, found: found)
    return found ? .json(200, "{\"status\":\"cancelled\"}") : .json(404, "{\"status\":\"not_running\"}")
}

let options = parseArguments()
let recorder = Recorder()
let sleeps = RunningSleeps()
let health = "{\"status\":\"ok\",\"protocol\":1,\"features\":[\(options.cancel ? "\"cancel\"" : "")]}"
// Several couriers at -c 100 may share one executor in the benchmarks: a
// connection cap above theirs (the other limits stay MiniHTTP's defaults).
let server = try MiniHTTPServer(port: options.port, limits: MiniHTTPServer.Limits(maxConnections: 1024)) { request in
    if request.method == "POST", let secret = options.secret, request.path.hasPrefix("/v1/"),
        !signatureValid(request.header("Courier-Signature"), body: request.body, secret: secret)
    {
        return .json(401, "{\"status\":\"refused\",\"reason\":\"signature does not match the body\"}")
    }
    switch (request.method, request.path) {
    case ("GET", "/stats"): return .json(200, recorder.statsJSON())
    case ("GET", "/cancels"): return .json(200, recorder.cancelsJSON())
    case ("GET", "/headers"): return .json(200, recorder.headersJSON())
    case ("POST", "/reset"): recorder.reset(); return .json(200, "{}")
    case ("GET", "/v1/health"): return .json(200, health)
    case ("POST", "/v1/jobs/exhausted"): return .json(200, "{\"status\":\"ok\"}")
    case ("POST", "/v1/jobs"): return runJob(request, options: options, recorder: recorder, sleeps: sleeps)
    case ("POST", "/v1/jobs/cancel") where options.cancel: return cancelJob(request, recorder: recorder, sleeps: sleeps)
    default: return .json(404, "{\"status\":\"refused\",\"reason\":\"no such endpoint\"}")
    }
}
var banner = Array("listening on 127.0.0.1:\(server.port)\n".utf8)
_ = write(1, &banner, banner.count)  // unbuffered: scripts wait for this line
while true { sleep(3600) }
