// This process's identity in Sidekiq's `hostname:pid:nonce` form, the key
// of its process hash and part of its in-progress list names.
import Glibc

/// A process identity in Sidekiq's form, `hostname:pid:nonce` with a 12-hex
/// nonce, so the Web UI and `Sidekiq::ProcessSet` list courier processes.
public struct ProcessIdentity: Sendable, Equatable, CustomStringConvertible {
    /// `$DYNO` or the host name; the first part of the identity and the info's `hostname`.
    public let hostname: String
    /// The process id, the info's `pid`.
    public let pid: Int
    /// 12 lowercase hex digits, random per start, so a restarted process with the same pid is a new identity.
    public let nonce: String

    /// This process's identity, with a fresh random nonce unless `nonce` (12 hex digits) is given.
    public init(hostname: String = ProcessIdentity.currentHostname(), pid: Int = Int(getpid()), nonce: String? = nil) {
        self.hostname = hostname
        self.pid = pid
        self.nonce =
            nonce
            ?? (0..<6).map { _ in
                let b = UInt8.random(in: 0...255)
                return (b < 16 ? "0" : "") + String(b, radix: 16)
            }.joined()
    }

    /// `hostname:pid:nonce`, the key of the process hash and the member of `processes`.
    public var description: String { "\(hostname):\(pid):\(nonce)" }

    /// `$DYNO` or the host name, as Sidekiq does.
    public static func currentHostname() -> String {
        if let dyno = getenv("DYNO") { return String(cString: dyno) }
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
