// This process's identity in Sidekiq's `hostname:pid:nonce` form, the key
// of its process hash and part of its in-progress list names.
import Glibc

/// A process identity in Sidekiq's form, `hostname:pid:nonce` with a 12-hex
/// nonce, so the Web UI and `Sidekiq::ProcessSet` list courier processes.
public struct ProcessIdentity: Sendable, Equatable, CustomStringConvertible {
    public let hostname: String
    public let pid: Int
    public let nonce: String

    public init(hostname: String = ProcessIdentity.currentHostname(), pid: Int = Int(getpid()), nonce: String? = nil) {
        self.hostname = hostname
        self.pid = pid
        self.nonce = nonce ?? (0..<6).map { _ in
            let b = UInt8.random(in: 0...255)
            return (b < 16 ? "0" : "") + String(b, radix: 16)
        }.joined()
    }

    public var description: String { "\(hostname):\(pid):\(nonce)" }

    /// `$DYNO` or the host name, as Sidekiq does.
    public static func currentHostname() -> String {
        if let dyno = getenv("DYNO") { return String(cString: dyno) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
