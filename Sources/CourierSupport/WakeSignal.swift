import Dispatch
import Synchronization

// WakeSignal: how the dispatcher loop sleeps between turns and is woken by
// any thread (an executor's answer, a watcher, a control call). A timed wait
// is a plain wait plus one timer that resumes only that wait: no child tasks,
// no Task.sleep, since the loop waits with a timeout on every coalescing
// pause under a backlog and each task costs thread hops. The timer runs on
// the loop's own thread when it has one (ThreadExecutor), else on a Dispatch
// queue.

/// Wakes one waiting task from any thread. A signal sent while nobody waits
/// is remembered, so a wake-up between "checked for work" and "started
/// waiting" is never lost.
public final class WakeSignal: Sendable {
    private struct State: ~Copyable {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Which wait `waiter` is (each wait takes the next number), so a late timer wakes no later wait.
        var waiterID: UInt64 = 0
        var lastID: UInt64 = 0
        /// A timer that fired before its wait started waiting: that wait returns at once.
        var expiredID: UInt64?

        mutating func nextID() -> UInt64 {
            lastID &+= 1
            return lastID
        }
    }
    private let state = Mutex(State())
    private let timers: any TimerScheduling

    /// `timers`: where a timed wait's timeout runs; nil: a Dispatch queue shared by every signal.
    public init(timers: (any TimerScheduling)? = nil) {
        self.timers = timers ?? DispatchTimers.shared
    }

    public func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at once if signalled since the last wait, else when signalled
    /// or when the waiting task is cancelled.
    public func wait() async {
        await wait(id: state.withLock { $0.nextID() })
    }

    /// Waits for a signal or until `timeout` passes, whichever is first. Only a real
    /// timeout ends the wait by timer: it never leaves a signal pending for the next wait.
    public func wait(timeout: Duration) async {
        let id = state.withLock { $0.nextID() }
        timers.schedule(after: timeout) { [weak self] in self?.expire(id) }
        await wait(id: id)
    }

    private func wait(id: UInt64) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.pending || state.expiredID == id {
                        state.pending = false
                        state.expiredID = nil
                        return true
                    }
                    state.waiter = continuation
                    state.waiterID = id
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
    }

    /// The timer of wait `id` fired: resume that wait if it is the one waiting, or
    /// make it return at once if it has not started waiting yet.
    private func expire(_ id: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter, state.waiterID == id {
                state.waiter = nil
                return waiter
            }
            if state.waiter == nil, state.lastID == id { state.expiredID = id }
            return nil
        }
        waiter?.resume()
    }
}

/// Timers on one Dispatch queue: WakeSignal's default.
struct DispatchTimers: TimerScheduling {
    static let shared = DispatchTimers()
    private let queue = DispatchQueue(label: "courier-wake-timers")

    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) {
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(delay.clampedNanoseconds)), execute: action)
    }
}
