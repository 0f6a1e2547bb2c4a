// Test support: the real Ruby Sidekiq client and API as the oracle.
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

/// Runs Ruby code with Sidekiq 7.3 loaded inside the Debian 13 root of
/// `scripts/debian13`, against `redisURL`, and returns the JSON it printed.
/// Nil when that root is not available here (no script, or its root not built).
func sidekiq7Ruby(_ code: String, redisURL: String) throws -> Any? {
    let script = packageRoot().appendingPathComponent("scripts/debian13").path
    guard FileManager.default.isExecutableFile(atPath: script) else { return nil }
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("ruby7-\(UUID().uuidString.prefix(8))")
    let (outPath, errPath) = (base.path + ".out", base.path + ".err")
    defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
    // `path` names the root without building it: a missing root would take minutes to make.
    guard try ChildProcess(script, ["path"], stdout: outPath, stderr: errPath).wait() == 0,
        let root = (try? String(contentsOfFile: outPath, encoding: .utf8))?.split(separator: "\n").last.map(String.init),
        FileManager.default.fileExists(atPath: root + "/usr/bin/ruby")
    else { return nil }
    try? FileManager.default.removeItem(atPath: outPath)
    var env = ProcessInfo.processInfo.environment
    env["REDIS_URL"] = redisURL
    let child = try ChildProcess(
        script, ["run", "--", "ruby", "-e", "require 'json'; require 'sidekiq'; " + code],
        environment: env, stdout: outPath, stderr: errPath)
    let status = child.wait()
    let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    guard status == 0 else {
        let errors = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        throw TestFailure("ruby (Sidekiq 7, debian13 root) failed (\(status)): \(errors)\ncode: \(code)")
    }
    let lastLine = output.split(separator: "\n").last.map(String.init) ?? "null"
    return try JSONSerialization.jsonObject(with: Data(lastLine.utf8), options: [.fragmentsAllowed])
}
