// The ops port: `/health`, `/ready` and `/metrics` on MiniHTTP, within its
// `.ops` limits (16 connections, 5 s timeouts, 16 KiB heads, 1 MiB bodies),
// so probes and scrapes cannot make courier hold more than that.
import MiniHTTP

/// `/health` (alive), `/ready` (Redis reachable, breaker not open, not
/// shutting down) and `/metrics` (Prometheus text) on their own port.
public final class OpsServer: Sendable {
    private let server: MiniHTTPServer
    /// The port bound (the one asked for, or a free one for 0).
    public var port: Int { server.port }

    /// Binds `host:port` and serves `metrics` and `readiness` (ready, and why not).
    public init(
        host: String, port: Int, metrics: CourierMetrics, limits: MiniHTTPServer.Limits = .ops,
        readiness: @escaping @Sendable () -> (Bool, String)
    ) throws {
        server = try MiniHTTPServer(host: host, port: port, limits: limits) { request in
            guard request.method == "GET" || request.method == "HEAD" else { return .text(405, "method not allowed\n") }
            switch request.path.split(separator: "?").first.map(String.init) ?? "" {
            case "/health":
                return .json(200, "{\"status\":\"ok\"}")
            case "/ready":
                let (ready, why) = readiness()
                return .json(ready ? 200 : 503, "{\"status\":\"\(ready ? "ready" : "not_ready")\",\"reason\":\"\(why)\"}")
            case "/metrics":
                return .text(200, metrics.render(), contentType: "text/plain; version=0.0.4")
            default:
                return .text(404, "not found\n")
            }
        }
    }

    /// Stops accepting connections.
    public func stop() { server.stop() }
}
