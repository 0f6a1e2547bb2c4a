import Logging
import RedisClient
import SidekiqModel
import Synchronization

/// Fast pickup without polling: when the dispatcher finds a queue empty it
/// arms that queue's watcher, which blocks in Redis until a job arrives and
/// then wakes the dispatcher. The watcher only *looks*: `BLMOVE q q RIGHT
/// RIGHT` moves the oldest job from the queue's tail back onto the same
/// tail, which leaves the list unchanged, so the job is then fetched
/// reliably by the exchange script like any other. An idle courier costs one
/// command per queue every `blockSeconds`.
public final class QueueWatchers: Sendable {
    private let watchers: [String: Watcher]
    private let wakeHandler = Mutex<(@Sendable () -> Void)?>(nil)

    private final class Watcher: Sendable {
        let queue: String
        let key: String
        let worker: RedisWorker
        let armed = Atomic<Bool>(false)
        let signal = WakeSignal()
        init(queue: String, key: String, worker: RedisWorker) {
            self.queue = queue
            self.key = key
            self.worker = worker
        }
    }

    public init(queues: [String], keys: SidekiqKeys, makeWorker: (String) -> RedisWorker) {
        var all: [String: Watcher] = [:]
        for queue in queues {
            all[queue] = Watcher(queue: queue, key: keys.queue(queue), worker: makeWorker("watch-\(queue)"))
        }
        watchers = all
    }

    var onWork: (@Sendable () -> Void)? {
        get { wakeHandler.withLock { $0 } }
        set { wakeHandler.withLock { $0 = newValue } }
    }

    /// Asks to be woken when any of these queues has a job.
    func arm(_ queues: [String]) {
        for queue in queues {
            guard let watcher = watchers[queue] else { continue }
            if !watcher.armed.exchange(true, ordering: .relaxed) { watcher.signal.signal() }
        }
    }

    /// Runs every watcher until the task is cancelled.
    public func run(logger: Logger, blockSeconds: Int = 2) async {
        await withDiscardingTaskGroup { group in
            for watcher in watchers.values {
                group.addTask { await self.watch(watcher, logger: logger, blockSeconds: blockSeconds) }
            }
        }
    }

    private func watch(_ watcher: Watcher, logger: Logger, blockSeconds: Int) async {
        let command = ["BLMOVE", watcher.key, watcher.key, "RIGHT", "RIGHT", String(blockSeconds)]
        while !Task.isCancelled {
            await watcher.signal.wait()
            while watcher.armed.load(ordering: .relaxed) && !Task.isCancelled {
                do {
                    let reply = try await watcher.worker.run { connection throws(RedisError) in
                        try connection.blockingCommand(command, blockFor: .seconds(blockSeconds)).orThrow("BLMOVE \(watcher.key)")
                    }
                    if !reply.isNull {
                        watcher.armed.store(false, ordering: .relaxed)
                        onWork?()
                    }
                } catch {
                    if !error.isConnectionProblem {
                        logger.error("queue watcher failed", metadata: ["queue": "\(watcher.queue)", "error": "\(error)"])
                    }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }
    }
}
