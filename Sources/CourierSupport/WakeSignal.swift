import Synchronization

/// Wakes one waiting task from any thread. A signal sent while nobody waits
/// is remembered, so a wake-up between "checked for work" and "started
/// waiting" is never lost.
public final class WakeSignal: Sendable {
    private struct State: ~Copyable {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    public init() {}

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
        await withTaskCancellationHandler {
            await waitForSignal()
        } onCancel: {
            signal()
        }
    }

    private func waitForSignal() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.pending {
                    state.pending = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Waits for a signal or until `timeout` passes, whichever is first.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask {
                // Signal only on a real timeout: a cancelled timer must not leave
                // a pending signal behind, or the next wait returns at once.
                do {
                    try await Task.sleep(for: timeout)
                    self.signal()
                } catch {}
            }
            await group.next()
            group.cancelAll()
            await group.waitForAll()
        }
    }
}
