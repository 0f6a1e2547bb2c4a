import Glibc

// ThreadExecutor: one OS thread that is both a serial executor (for an actor
// that owns a blocking C handle) and a task executor (for a task's
// nonisolated code), with timers served by the same thread.
//
// Why by hand: the dispatcher loop and its Redis connection take turns on
// every round trip. On the cooperative pool plus a dispatch queue each turn
// hops threads (pool → queue → pool, and a Dispatch timer thread for each
// timed wait), and on this class of machine those wake-ups cost more CPU than
// the round trip's own work. On one thread, an actor hop is a queue append on
// the thread already running; only another thread's wake-up (an executor's
// answer) signals it. libdispatch cannot pin a task to one of its threads,
// and swift-nio's event loops would bring a large package for one thread.
//
// The thread starts with the first job and ends after `idleExit` with
// nothing queued and no timer due, so an executor nobody uses holds no
// thread; the next job starts a new one.

/// A dedicated thread running enqueued jobs one at a time, in order, and timers.
/// Blocking calls made from its jobs block only this thread, never the cooperative pool.
public final class ThreadExecutor: SerialExecutor, TaskExecutor, TimerScheduling, @unchecked Sendable {
    // @unchecked Sendable: every mutable field below is read and written only with `lock`
    // held (a pthread mutex, because the thread sleeps on the condition variable paired with it).
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let wakeup: UnsafeMutablePointer<pthread_cond_t>
    private var jobs: [UnownedJob] = []
    private var timers: [(deadline: UInt64, action: @Sendable () -> Void)] = []
    /// A thread serves the queue now.
    private var serving = false
    /// That thread waits on `wakeup`: only then does an enqueue signal it.
    private var sleeping = false
    /// Names the thread (`top -H`, `/proc/PID/task/*/comm`).
    public let name: String
    /// How long the thread stays with nothing to do before it ends.
    public let idleExit: Duration

    public init(name: String, idleExit: Duration = .seconds(30)) {
        self.name = name
        self.idleExit = idleExit
        lock = .allocate(capacity: 1)
        wakeup = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)  // timers are monotonic
        pthread_cond_init(wakeup, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        // A serving thread holds `self`, so no thread is left when this runs.
        pthread_cond_destroy(wakeup)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        wakeup.deallocate()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pthread_mutex_lock(lock)
        jobs.append(job)
        wakeLocked()
        pthread_mutex_unlock(lock)
    }

    /// Runs `action` on this thread once `delay` has passed (after the jobs queued by then).
    public func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) {
        let deadline = Self.monotonicNanoseconds() &+ Self.nanoseconds(delay)
        pthread_mutex_lock(lock)
        timers.append((deadline, action))
        wakeLocked()
        pthread_mutex_unlock(lock)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// With `lock` held: makes sure a thread will look at the queue and the timers.
    private func wakeLocked() {
        if !serving {
            serving = true
            startDedicatedThread(name: name) { [self] in serve() }
        } else if sleeping {
            pthread_cond_signal(wakeup)
        }
    }

    /// The thread's loop: jobs first, then due timers, else sleep until the next timer
    /// or a wake-up; ends after `idleExit` with nothing to do.
    private func serve() {
        var batch: [UnownedJob] = []
        pthread_mutex_lock(lock)
        while true {
            if !jobs.isEmpty {
                swap(&batch, &jobs)
                pthread_mutex_unlock(lock)
                for job in batch {
                    job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
                }
                batch.removeAll(keepingCapacity: true)
                pthread_mutex_lock(lock)
                continue
            }
            let now = Self.monotonicNanoseconds()
            if let due = timers.firstIndex(where: { $0.deadline <= now }) {
                let action = timers.remove(at: due).action
                pthread_mutex_unlock(lock)
                action()
                pthread_mutex_lock(lock)
                continue
            }
            let next = timers.lazy.map(\.deadline).min()
            var until = Self.timespec(nanoseconds: next ?? now &+ Self.nanoseconds(idleExit))
            sleeping = true
            let rc = pthread_cond_timedwait(wakeup, lock, &until)
            sleeping = false
            if rc == ETIMEDOUT && next == nil && jobs.isEmpty && timers.isEmpty {
                serving = false
                pthread_mutex_unlock(lock)
                return
            }
        }
    }

    private static func monotonicNanoseconds() -> UInt64 {
        var now = Glibc.timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 { UInt64(duration.clampedNanoseconds) }

    private static func timespec(nanoseconds: UInt64) -> Glibc.timespec {
        Glibc.timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    }
}

extension Duration {
    /// Whole nanoseconds, 0 for a negative duration and at most 2³² seconds' worth (a timer's delay).
    var clampedNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        return min(seconds, 1 << 32) * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000
    }
}

/// Runs an action later: how a timed wait arms its timeout (WakeSignal).
public protocol TimerScheduling: Sendable {
    /// Runs `action` once `delay` has passed, on a thread of the scheduler's choosing.
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void)
}
