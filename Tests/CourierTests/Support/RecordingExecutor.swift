// Test support: an in-process HTTP executor that records what it gets.
import Foundation
import MiniHTTP
import SidekiqModel
import Synchronization

/// A real HTTP executor on 127.0.0.1:0 that records every body it receives
/// and the most jobs it ran at once. `behaviour` decides each answer, except
/// for `GET /v1/health`, which is answered at once (with `healthFeatures`) and
/// not recorded.
final class RecordingExecutor: Sendable {
    struct Received: Sendable {
        let body: [UInt8]
        let headers: [(String, String)]
        let path: String
    }

    struct State: ~Copyable {
        var received: [Received] = []
        var current = 0
        var maxConcurrent = 0
        var currentByQueue: [String: Int] = [:]
        var maxByQueue: [String: Int] = [:]
    }

    private let server: MiniHTTPServer
    var url: String { "http://127.0.0.1:\(server.port)" }

    init(
        healthFeatures: [String] = [],
        behaviour: @escaping @Sendable (HTTPRequest) -> HTTPResponse = { _ in .json(200, "{\"status\":\"ok\"}") }
    ) throws {
        let state = StateBox()
        let health = "{\"status\":\"ok\",\"protocol\":1,\"features\":[" + healthFeatures.map { "\"\($0)\"" }.joined(separator: ",") + "]}"
        server = try MiniHTTPServer { request in
            if request.path == "/v1/health" { return .json(200, health) }
            return state.handle(request, behaviour)
        }
        box = state
    }

    private let box: StateBox

    /// Holds the mutable state so the server closure can reach it before `self` exists.
    final class StateBox: Sendable {
        fileprivate let state = Mutex(State())
        func handle(_ request: HTTPRequest, _ behaviour: @Sendable (HTTPRequest) -> HTTPResponse) -> HTTPResponse {
            let queue = request.header("Courier-Queue") ?? ""
            state.withLock { s in
                s.received.append(Received(body: request.body, headers: request.headers, path: request.path))
                s.current += 1
                s.maxConcurrent = max(s.maxConcurrent, s.current)
                s.currentByQueue[queue, default: 0] += 1
                s.maxByQueue[queue] = max(s.maxByQueue[queue] ?? 0, s.currentByQueue[queue]!)
            }
            let response = behaviour(request)
            state.withLock { s in
                s.current -= 1
                s.currentByQueue[queue, default: 0] -= 1
            }
            return response
        }
    }

    var received: [Received] { box.state.withLock { $0.received } }
    var jobBodies: [[UInt8]] { received.filter { $0.path == "/v1/jobs" }.map(\.body) }
    var count: Int { box.state.withLock { $0.received.filter { $0.path == "/v1/jobs" }.count } }
    var maxConcurrent: Int { box.state.withLock { $0.maxConcurrent } }
    /// Requests inside `behaviour` now.
    var current: Int { box.state.withLock { $0.current } }
    func maxConcurrent(queue: String) -> Int { box.state.withLock { $0.maxByQueue[queue] ?? 0 } }
    var jids: [String] { jobBodies.compactMap { (try? JobPayload(raw: $0))?.jid } }

    func stop() { server.stop() }
}

/// Sleeps `ms` then answers 200: a job that takes time.
func slowOK(ms: UInt32) -> @Sendable (HTTPRequest) -> HTTPResponse {
    { _ in
        usleep(ms * 1000); return .json(200, "{\"status\":\"ok\"}")
    }
}
