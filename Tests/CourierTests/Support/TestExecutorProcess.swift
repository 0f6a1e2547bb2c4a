// Test support: courier-test-executor as a child process.
import Foundation

/// `courier-test-executor` running as a child process on a free port (built by
/// `swift build`): the executor that implements protocol v1's cancel.
final class TestExecutorProcess: Sendable {
    let child: ChildProcess
    let port: Int
    private let output: URL

    init(arguments: [String] = []) throws {
        let binary = packageRoot().appendingPathComponent(".build/debug/courier-test-executor").path
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw TestFailure("no test executor at \(binary); run swift build first") }
        output = FileManager.default.temporaryDirectory.appendingPathComponent("test-executor-\(UUID().uuidString.prefix(8)).log")
        child = try ChildProcess(binary, ["--port", "0"] + arguments, stdout: output.path, stderr: output.path)
        var found: Int?
        let output = self.output
        try waitUntil("test executor listening", timeout: 10) {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on 127.0.0.1:") }) else { return false }
            found = Int(line.split(separator: ":").last ?? "")
            return found != nil
        }
        port = found!
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// GET /stats: received, running, interrupted, max_concurrency, ….
    func stats() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(httpGet(port: port, path: "/stats").body.utf8)) as? [String: Any] ?? [:]
    }

    /// GET /cancels: every cancel request, as (jid, reason, found).
    func cancels() throws -> [(jid: String, reason: String, found: Bool)] {
        let list = try JSONSerialization.jsonObject(with: Data(httpGet(port: port, path: "/cancels").body.utf8)) as? [[String: Any]] ?? []
        return list.map { ($0["jid"] as? String ?? "", $0["reason"] as? String ?? "", $0["found"] as? Bool ?? false) }
    }

    deinit { try? FileManager.default.removeItem(at: output) }
}
