// A small recording executor for tests and benchmarks: answers every job
// with 200 (optionally after a delay), and reports at GET /stats how many
// jobs it saw, the most it ran at once, and pickup latency (now − the job's
// enqueued_at) percentiles. Not part of the product.
import Glibc
import MiniHTTP
import SidekiqModel
import Synchronization

final class Recorder: Sendable {
    private struct State: ~Copyable {
        var received = 0
        var current = 0
        var maxConcurrent = 0
        var latencies: [Double] = []
    }
    private let state = Mutex(State())

    func begin(latency: Double?) {
        state.withLock { s in
            s.received += 1
            s.current += 1
            s.maxConcurrent = max(s.maxConcurrent, s.current)
            if let latency { s.latencies.append(latency) }
        }
    }
    func end() { state.withLock { $0.current -= 1 } }
    func reset() { state.withLock { $0 = State() } }

    func statsJSON() -> String {
        state.withLock { s in
            let sorted = s.latencies.sorted()
            func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] * 1000 }
            return "{\"received\":\(s.received),\"max_concurrency\":\(s.maxConcurrent),\"latency_samples\":\(sorted.count),"
                + "\"latency_p50_ms\":\(pct(0.5)),\"latency_p99_ms\":\(pct(0.99)),\"latency_max_ms\":\(sorted.last.map { $0 * 1000 } ?? 0)}"
        }
    }
}

func parseArguments() -> (port: Int, delayMicros: UInt32) {
    var port = 0
    var delayMicros: UInt32 = 0
    var args = CommandLine.arguments.dropFirst()
    while let arg = args.popFirst() {
        switch arg {
        case "--port": port = Int(args.popFirst() ?? "") ?? 0
        case "--delay-ms": delayMicros = UInt32((Double(args.popFirst() ?? "") ?? 0) * 1000)
        default:
            print("usage: courier-test-executor [--port N] [--delay-ms MS]")
            exit(64)
        }
    }
    return (port, delayMicros)
}
let (port, delayMicros) = parseArguments()

let recorder = Recorder()
let server = try MiniHTTPServer(port: port) { [delayMicros] request in
    switch (request.method, request.path) {
    case ("GET", "/stats"): return .json(200, recorder.statsJSON())
    case ("POST", "/reset"): recorder.reset(); return .json(200, "{}")
    case ("GET", "/v1/health"): return .json(200, "{\"status\":\"ok\"}")
    case ("POST", "/v1/jobs/exhausted"): return .json(200, "{\"status\":\"ok\"}")
    case ("POST", "/v1/jobs"):
        var latency: Double?
        if let payload = try? JobPayload(raw: request.body), let enqueued = payload["enqueued_at"]?.doubleValue {
            latency = WallClock.system.now() - enqueued
        }
        recorder.begin(latency: latency)
        if delayMicros > 0 { usleep(delayMicros) }
        recorder.end()
        return .json(200, "{\"status\":\"ok\"}")
    default: return .text(404, "not found\n")
    }
}
var banner = Array("listening on 127.0.0.1:\(server.port)\n".utf8)
_ = write(1, &banner, banner.count)  // unbuffered: scripts wait for this line
while true { sleep(3600) }
