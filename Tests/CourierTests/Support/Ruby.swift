import Foundation

/// Runs Ruby code with the real Sidekiq 6.4.1 client and API loaded, against
/// `redisURL`, and returns the JSON it printed.
func sidekiqRuby(_ code: String, redisURL: String) throws -> Any {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Ruby/sidekiq_client.rb")
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("ruby-\(UUID().uuidString.prefix(8))")
    let (outPath, errPath) = (base.path + ".out", base.path + ".err")
    defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
    var env = ProcessInfo.processInfo.environment
    env["REDIS_URL"] = redisURL
    let child = try ChildProcess(try which("ruby"), [script.path, code], environment: env, stdout: outPath, stderr: errPath)
    let status = child.wait()
    let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    guard status == 0 else {
        let errors = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        throw TestFailure("ruby failed (\(status)): \(errors)\ncode: \(code)")
    }
    let lastLine = output.split(separator: "\n").last.map(String.init) ?? "null"
    return try JSONSerialization.jsonObject(with: Data(lastLine.utf8), options: [.fragmentsAllowed])
}
