import CourierSupport
import JobDispatch
import Logging
import RedisClient
import SidekiqModel
import Synchronization

/// Fast pickup without polling. When the dispatcher finds a queue empty it
/// arms that queue's watcher, which blocks in Redis until a job arrives:
///
/// - **claim** (the dispatcher had an idle concurrency token for it):
///   `BLMOVE queue wip RIGHT LEFT` moves the job straight into this
///   process's in-progress list, atomically, exactly as the exchange
///   script's RPOPLPUSH would, and hands it over on the watcher's own thread,
///   so it goes to the executor without another Redis round trip or hop.
///   An armed claim holds its token until the watcher is out of Redis again,
///   so the concurrency limit holds however the race goes.
/// - **look** (no token to spare): `BLMOVE queue queue RIGHT RIGHT` leaves
///   the list unchanged and only wakes the dispatcher, which then fetches
///   through the exchange script like any other job.
///
/// An idle courier costs one command per queue every `blockSeconds`.
/// Disarming a blocked watcher (quiet, a backlog elsewhere that needs its
/// token, reconcile) unblocks it with `CLIENT UNBLOCK` from another connection,
/// sent by a task of `run`'s own, so it ends with the watchers.
public final class QueueWatchers: QueueWatching {
    typealias Mode = WatchMode

    private let watchers: [String: Watcher]
    private let order: [Watcher]
    private let control: RedisWorker
    private let blockSeconds: Int
    private let handlers = Mutex<WatchHandlers>(WatchHandlers())
    /// Connection ids `disarm` wants unblocked; `run`'s unblocker sends them.
    private let unblockIDs = Mutex<Set<Int>>([])
    private let unblockWanted = WakeSignal()

    private final class Watcher: Sendable {
        struct State {
            var wanted: Mode = .off
            /// Counts against the concurrency limit from arm(claim) until the
            /// watcher is out of Redis with no claim pending.
            var holdsToken = false
            /// Inside a BLMOVE now.
            var busy = false
            /// Counts armings, so a find does not undo an arming made while the watcher was in Redis.
            var generation: UInt64 = 0
        }
        let queue: String
        let lookCommand: [String]
        let claimCommand: [String]
        let worker: RedisWorker
        let state = Mutex(State())
        /// The watcher connection's CLIENT ID (0: not known yet), for CLIENT UNBLOCK.
        let clientID = Atomic<Int>(0)
        let signal = WakeSignal()

        init(queue: String, key: String, wipKey: String, blockSeconds: Int, worker: RedisWorker) {
            self.queue = queue
            self.worker = worker
            lookCommand = ["BLMOVE", key, key, "RIGHT", "RIGHT", String(blockSeconds)]
            claimCommand = ["BLMOVE", key, wipKey, "RIGHT", "LEFT", String(blockSeconds)]
        }
    }

    public init(
        queues: [String], keys: SidekiqKeys, identity: String, control: RedisWorker, blockSeconds: Int = 2,
        makeWorker: (String) -> RedisWorker
    ) {
        var all: [String: Watcher] = [:]
        var order: [Watcher] = []
        for queue in queues {
            let watcher = Watcher(
                queue: queue, key: keys.queue(queue), wipKey: keys.key("courier:wip:\(identity):\(queue)"),
                blockSeconds: blockSeconds, worker: makeWorker("watch-\(queue)"))
            all[queue] = watcher
            order.append(watcher)
        }
        watchers = all
        self.order = order
        self.control = control
        self.blockSeconds = blockSeconds
    }

    public func setHandlers(_ new: WatchHandlers) { handlers.withLock { $0 = new } }

    /// Tokens held by armed claims (the dispatcher subtracts them from what it may fetch).
    public var reservedTokens: Int { order.reduce(0) { $0 + ($1.state.withLock { $0.holdsToken } ? 1 : 0) } }

    /// Whether this queue's watcher holds a token (for per-queue caps).
    public func holdsToken(_ queue: String) -> Bool { watchers[queue]?.state.withLock { $0.holdsToken } ?? false }

    /// Asks to be woken (look) or handed the job (claim, taking one token) when a queue has one.
    public func arm(_ queue: String, _ mode: WatchMode) {
        guard mode != .off, let watcher = watchers[queue] else { return }
        let start = watcher.state.withLock { s -> Bool in
            if mode == .claim { s.holdsToken = true } else if s.wanted == .claim { return false }  // keep the stronger arming
            s.wanted = mode
            s.generation &+= 1
            return !s.busy
        }
        if start { watcher.signal.signal() }
    }

    /// Disarms every claim (or every watcher): tokens come back once each is out
    /// of Redis, and each watcher then wakes the dispatcher. Does not wait.
    public func disarm(claimsOnly: Bool) {
        var unblock: [Int] = []
        for watcher in order {
            let id = watcher.clientID.load(ordering: .relaxed)
            watcher.state.withLock { s in
                guard s.wanted == .claim || (!claimsOnly && s.wanted == .look) else { return }
                s.wanted = .off
                if s.busy { unblock.append(id) } else { s.holdsToken = false }
            }
        }
        // A watcher not yet known by id (0) re-checks its arming just before it blocks;
        // one whose connection may not use CLIENT (-1) sits out its block.
        let ids = unblock.filter { $0 > 0 }
        guard !ids.isEmpty else { return }
        unblockIDs.withLock { $0.formUnion(ids) }
        unblockWanted.signal()
    }

    /// Sends the `CLIENT UNBLOCK`s `disarm` asked for, without the caller waiting,
    /// until the task is cancelled. An unblock that arrives after the watcher blocked
    /// again only costs it one more BLMOVE.
    private func unblockLoop() async {
        while !Task.isCancelled {
            await unblockWanted.wait()
            let ids = unblockIDs.withLock { ids in
                defer { ids.removeAll() }
                return ids.sorted()
            }
            guard !ids.isEmpty, !Task.isCancelled else { continue }
            // Not fatal if it fails: each watcher is back from Redis within blockSeconds anyway.
            _ = try? await control.run { connection throws(RedisError) in
                try connection.pipeline(ids.map { ["CLIENT", "UNBLOCK", String($0)].map { Array($0.utf8) } })
            }
        }
    }

    /// True when no watcher is armed, inside Redis or holding a token: nothing can be claimed until the next arming.
    public var isDisarmed: Bool { order.allSatisfy { w in w.state.withLock { $0.wanted == .off && !$0.busy && !$0.holdsToken } } }

    /// Disarms everything and waits (bounded) until no watcher is inside Redis,
    /// so every claim already made has been handed over.
    public func quiesce() async {
        disarm(claimsOnly: false)
        let deadline = ContinuousClock.now + .seconds(blockSeconds + 1)
        while !isDisarmed && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Runs every watcher, and the unblocker that serves `disarm`, until the task is cancelled.
    public func run(logger: Logger) async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.unblockLoop() }
            for watcher in order {
                group.addTask { await self.watch(watcher, logger: logger) }
            }
        }
    }

    private func watch(_ watcher: Watcher, logger: Logger) async {
        while !Task.isCancelled {
            await watcher.signal.wait()
            while !Task.isCancelled, let (mode, generation) = begin(watcher) {
                let handlers = handlers.withLock { $0 }
                do {
                    let found = try await watcher.worker.run { connection throws(RedisError) -> Bool in
                        if watcher.clientID.load(ordering: .relaxed) == 0 || connection.clientID == nil {
                            // An ACL user may not be allowed CLIENT (-1): then a disarmed watcher
                            // just sits out its block (≤ blockSeconds) instead of being unblocked.
                            let id = try connection.command(["CLIENT", "ID"]).int ?? -1
                            connection.clientID = id
                            watcher.clientID.store(id, ordering: .relaxed)
                        }
                        // Disarmed meanwhile (perhaps before its id was known for CLIENT UNBLOCK): do not block.
                        guard watcher.state.withLock({ $0.wanted == mode }) else { return false }
                        let command = mode == .claim ? watcher.claimCommand : watcher.lookCommand
                        let reply = try connection.blockingCommand(command, blockFor: .seconds(blockSeconds)).orThrow("BLMOVE \(watcher.queue)")
                        guard let body = reply.bytes else { return false }
                        if mode == .claim {
                            // Still inside the worker: the job is delivered from this thread, and
                            // counts as running before this watcher gives its token back.
                            handlers.onClaim?(FetchedJob(queue: watcher.queue, original: body, fetchedAt: .now))
                        }
                        return true
                    }
                    end(watcher, found: found, generation: generation)
                    // After `end`: the dispatcher re-arms this watcher once its token is back.
                    if found { handlers.onWork?() }
                } catch {
                    // The move may have happened with its reply lost: the dispatcher reconciles.
                    if mode == .claim && error.code == .connectionLost { handlers.onClaimLost?() }
                    end(watcher, found: false, generation: generation)
                    if !error.isConnectionProblem {
                        logger.error("queue watcher failed", metadata: ["queue": "\(watcher.queue)", "error": "\(error)"])
                    }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }
    }

    /// The mode to block in next and the arming it serves, marking the watcher busy (nil: disarmed).
    private func begin(_ watcher: Watcher) -> (Mode, UInt64)? {
        watcher.state.withLock { s in
            guard s.wanted != .off else {
                s.holdsToken = false
                return nil
            }
            s.busy = true
            return (s.wanted, s.generation)
        }
    }

    /// Back from Redis: a find disarms, unless the dispatcher armed again meanwhile.
    private func end(_ watcher: Watcher, found: Bool, generation: UInt64) {
        let released = watcher.state.withLock { s -> Bool in
            s.busy = false
            if found && s.generation == generation { s.wanted = .off }
            guard s.holdsToken, s.wanted != .claim else { return false }
            s.holdsToken = false
            return true
        }
        // A token came back: the dispatcher may fetch with it now.
        if released && !found { handlers.withLock { $0.onWork }?() }
    }
}
