// Parses REDIS_URL the way redis-rb does, so the same URL works for the Rails
// app and for courier: redis://[user:pass@]host:port/db and unix:///path?db=N.

/// Where and how to connect to Redis.
public struct RedisEndpoint: Sendable, Equatable {
    /// A TCP host and port, or a unix socket path.
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }
    /// Where the server is.
    public var address: Address
    /// The ACL user (Redis 6+), or nil for the default user.
    public var username: String?
    /// Sent with `AUTH` after connecting; nil sends no `AUTH`.
    public var password: String?
    /// The database number to `SELECT` after connecting (0, the default, sends no `SELECT`).
    public var database: Int

    /// An endpoint from parts; the URL parser below is the usual way in.
    public init(address: Address, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.address = address
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `redis://[user:pass@]host[:port][/db]` or `unix:///path[?db=N]`.
    public init(url: String) throws(RedisError) {
        func bad(_ why: String) -> RedisError { RedisError(.invalidURL, "\(why) in REDIS_URL '\(url)'") }
        let parts = url.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw bad("missing scheme") }
        let scheme = parts[0].lowercased()
        var rest = String(parts[1])
        var query: [String: String] = [:]
        if let q = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                query[String(kv[0])] = kv.count > 1 ? percentDecoded(String(kv[1])) : ""
            }
            rest = String(rest[..<q])
        }
        switch scheme {
        case "unix":
            guard rest.hasPrefix("/") else { throw bad("unix socket path must be absolute") }
            self.init(address: .unix(path: rest), password: query["password"])
            if let db = query["db"] { guard let n = Int(db), n >= 0 else { throw bad("bad db") }; database = n }
        case "redis":
            var userinfo: Substring? = nil
            if let at = rest.lastIndex(of: "@") {
                userinfo = rest[..<at]
                rest = String(rest[rest.index(after: at)...])
            }
            var hostPort = Substring(rest)
            var db = 0
            if let slash = rest.firstIndex(of: "/") {
                hostPort = rest[..<slash]
                let dbText = rest[rest.index(after: slash)...]
                if !dbText.isEmpty {
                    guard let n = Int(dbText), n >= 0 else { throw bad("bad database number '\(dbText)'") }
                    db = n
                }
            }
            var host = String(hostPort)
            var port = 6379
            if hostPort.hasPrefix("[") {  // IPv6 literal
                guard let close = hostPort.firstIndex(of: "]") else { throw bad("unclosed IPv6 bracket") }
                host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
                let after = hostPort[hostPort.index(after: close)...]
                if after.hasPrefix(":") {
                    guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw bad("bad port") }
                    port = p
                }
            } else if let colon = hostPort.lastIndex(of: ":") {
                host = String(hostPort[..<colon])
                guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
                    throw bad("bad port")
                }
                port = p
            }
            if host.isEmpty { host = "127.0.0.1" }
            var user: String? = nil
            var pass: String? = nil
            if let info = userinfo {
                if let colon = info.firstIndex(of: ":") {
                    let u = percentDecoded(String(info[..<colon]))
                    user = u.isEmpty ? nil : u
                    pass = percentDecoded(String(info[info.index(after: colon)...]))
                } else {
                    // redis-rb treats a lone userinfo as the password.
                    pass = percentDecoded(String(info))
                }
            }
            if let p = query["password"] { pass = p }
            self.init(address: .tcp(host: host, port: port), username: user, password: pass, database: db)
        case "rediss":
            throw RedisError(.invalidURL, "TLS (rediss://) is not supported by hiredis 0.14; use a TLS proxy such as stunnel: '\(url)'")
        default:
            throw bad("unsupported scheme '\(scheme)'")
        }
    }

    /// The URL with the password masked, for logs.
    public var redacted: String {
        let auth = password == nil ? "" : "\(username ?? ""):***@"
        switch address {
        case let .tcp(host, port): return "redis://\(auth)\(host):\(port)/\(database)"
        case let .unix(path): return "unix://\(path)?db=\(database)"
        }
    }
}

private func percentDecoded(_ s: String) -> String {
    guard s.contains("%") else { return s }
    var bytes: [UInt8] = []
    var it = Array(s.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "%"), it.count >= 2,
            let v = UInt8(String(decoding: it.prefix(2), as: UTF8.self), radix: 16)
        {
            bytes.append(v)
            it = it.dropFirst(2)
        } else {
            bytes.append(b)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
