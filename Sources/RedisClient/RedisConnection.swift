// One blocking hiredis connection: connect with timeouts, AUTH and SELECT
// from the URL, commands and pipelines, Lua scripts by SHA. Used only from
// the RedisWorker that owns it, never on Swift's cooperative pool.
import CHiredis
import Glibc

/// Timeouts for one connection.
public struct RedisTimeouts: Sendable, Equatable {
    /// How long a TCP/unix connect may take.
    public var connect: Duration
    /// How long any non-blocking command may wait for its reply.
    public var command: Duration

    /// Defaults: 2 s to connect, 5 s per command; `--redis-timeout-ms` sets the command
    /// timeout and caps the connect timeout at 2 s.
    public init(connect: Duration = .seconds(2), command: Duration = .seconds(5)) {
        self.connect = connect
        self.command = command
    }
}

/// One blocking hiredis connection. Not thread-safe and not `Sendable`: exactly
/// one thread (a `RedisWorker`'s queue) owns it. Any I/O error leaves it
/// unusable (`isBroken`), and the owner replaces it.
public final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    private let timeouts: RedisTimeouts
    /// True after an I/O error or timeout; every later call throws `.connectionLost`, and the owning `RedisWorker` drops it.
    public private(set) var isBroken = false
    /// SHA-1 of each script this connection has loaded, by script name.
    private var scriptSHAs: [String: [UInt8]] = [:]
    /// This connection's `CLIENT ID`, once its owner asked (for `CLIENT UNBLOCK` from elsewhere).
    public var clientID: Int?

    /// Connects, authenticates and selects the database.
    public init(endpoint: RedisEndpoint, timeouts: RedisTimeouts) throws(RedisError) {
        self.timeouts = timeouts
        let tv = timeval(timeouts.connect)
        let ctx: UnsafeMutablePointer<redisContext>?
        switch endpoint.address {
        case let .tcp(host, port): ctx = redisConnectWithTimeout(host, Int32(port), tv)
        case let .unix(path): ctx = redisConnectUnixWithTimeout(path, tv)
        }
        guard let ctx else { throw RedisError(.connectFailed, "cannot allocate a hiredis context") }
        if ctx.pointee.err != 0 {
            let why = Self.errorText(ctx)
            redisFree(ctx)
            throw RedisError(.connectFailed, "connect to \(endpoint.redacted): \(why)")
        }
        context = ctx
        redisSetTimeout(ctx, timeval(timeouts.command))
        do throws(RedisError) {
            if let password = endpoint.password {
                var auth = ["AUTH"]
                if let user = endpoint.username { auth.append(user) }
                auth.append(password)
                try command(auth).orThrow("AUTH for \(endpoint.redacted)")
            }
            if endpoint.database != 0 {
                try command(["SELECT", String(endpoint.database)]).orThrow("SELECT \(endpoint.database)")
            }
        } catch {
            throw RedisError(.connectFailed, error.message)
        }
    }

    deinit { redisFree(context) }

    /// Sends one command and waits for its reply.
    public func command(_ args: [String]) throws(RedisError) -> RedisReply {
        try pipeline([args.map { Array($0.utf8) }])[0]
    }

    /// Sends a blocking command (BLMOVE, BRPOP…) whose server-side timeout is
    /// `blockFor`: the socket timeout is stretched to cover it.
    public func blockingCommand(_ args: [String], blockFor: Duration) throws(RedisError) -> RedisReply {
        redisSetTimeout(context, timeval(blockFor + timeouts.command))
        defer { if !isBroken { redisSetTimeout(context, timeval(timeouts.command)) } }
        return try command(args)
    }

    /// Sends all commands in one write and reads all replies: one round trip.
    public func pipeline(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        guard !isBroken else { throw RedisError(.connectionLost, "connection already broken") }
        for args in commands {
            // An empty command is never answered by Redis: refuse it rather than hang.
            precondition(!args.isEmpty, "empty Redis command")
            try append(args)
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer? = nil
            if redisGetReply(context, &raw) != REDIS_OK || raw == nil {
                isBroken = true
                throw RedisError(.connectionLost, Self.errorText(context))
            }
            let reply = raw!.assumingMemoryBound(to: redisReply.self)
            defer { freeReplyObject(raw) }
            replies.append(RedisReply(reply))
        }
        return replies
    }

    /// Runs a Lua script by SHA, loading it on the first use or after
    /// `SCRIPT FLUSH`/a Redis restart (NOSCRIPT).
    public func evaluate(_ script: RedisScript, keys: [[UInt8]] = [], args: [[UInt8]]) throws(RedisError) -> RedisReply {
        func run(_ sha: [UInt8]) throws(RedisError) -> RedisReply {
            var argv: [[UInt8]] = [Array("EVALSHA".utf8), sha, Array(String(keys.count).utf8)]
            argv.reserveCapacity(3 + keys.count + args.count)
            argv.append(contentsOf: keys)
            argv.append(contentsOf: args)
            return try pipeline([argv])[0]
        }
        if let sha = scriptSHAs[script.name] {
            let reply = try run(sha)
            guard case let .error(message) = reply, message.hasPrefix("NOSCRIPT") else {
                return try reply.orThrow("script \(script.name)")
            }
        }
        guard let sha = try command(["SCRIPT", "LOAD", script.source]).orThrow("SCRIPT LOAD \(script.name)").bytes else {
            throw RedisError(.unexpectedReply, "SCRIPT LOAD \(script.name) returned no SHA")
        }
        scriptSHAs[script.name] = sha
        return try run(sha).orThrow("script \(script.name)")
    }

    private func append(_ args: [[UInt8]]) throws(RedisError) {
        // One contiguous buffer for all arguments; argv points into it.
        let total = args.reduce(0) { $0 + $1.count }
        var buffer = [UInt8]()
        buffer.reserveCapacity(total + 1)
        var lengths = [Int]()
        lengths.reserveCapacity(args.count)
        for arg in args {
            buffer.append(contentsOf: arg)
            lengths.append(arg.count)
        }
        buffer.append(0)
        let status: Int32 = buffer.withUnsafeBufferPointer { base in
            var pointers = [UnsafePointer<CChar>?]()
            pointers.reserveCapacity(args.count)
            var offset = 0
            let raw = UnsafeRawPointer(base.baseAddress!)
            for length in lengths {
                pointers.append((raw + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { lens in
                    redisAppendCommandArgv(context, Int32(args.count), argv.baseAddress, lens.baseAddress)
                }
            }
        }
        if status != REDIS_OK {
            isBroken = true
            throw RedisError(.connectionLost, Self.errorText(context))
        }
    }

    private static func errorText(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        let text = withUnsafeBytes(of: ctx.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "error \(ctx.pointee.err)" : text
    }
}

private func timeval(_ d: Duration) -> Glibc.timeval {
    let (seconds, attoseconds) = d.components
    return Glibc.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
}

/// A Lua script, sent once per connection and run by SHA afterwards.
public struct RedisScript: Sendable {
    /// Short name for logs and errors, unique per script (the SHA cache is keyed by it).
    public let name: String
    /// The Lua source.
    public let source: String

    /// A script; nothing is sent until the first `RedisConnection.evaluate`.
    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }
}
