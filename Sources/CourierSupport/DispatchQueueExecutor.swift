import Dispatch

/// A serial executor backed by a dispatch queue of its own. Actors that wrap
/// blocking C handles (hiredis) run on one of these, so their blocking calls
/// occupy a dispatch thread instead of Swift's few cooperative threads.
public final class DispatchQueueExecutor: SerialExecutor {
    private let queue: DispatchQueue

    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
