// WakeSignal, the dispatcher loop's sleep: a signal is never lost, a timed
// wait ends at its timeout, and a timer never wakes a later wait or leaves a
// signal pending for it.
import CourierSupport
import Foundation
import XCTest

final class WakeSignalTests: XCTestCase {
    private func elapsed(_ body: () async -> Void) async -> Double {
        let start = ContinuousClock.now
        await body()
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    func testASignalSentBeforeTheWaitIsKept() async {
        let wake = WakeSignal()
        wake.signal()
        let t = await elapsed { await wake.wait(timeout: .seconds(5)) }
        XCTAssertLessThan(t, 1)
    }

    func testATimedWaitEndsAtItsTimeout() async {
        let wake = WakeSignal()
        let t = await elapsed { await wake.wait(timeout: .milliseconds(50)) }
        XCTAssertGreaterThanOrEqual(t, 0.045)
        XCTAssertLessThan(t, 2)
    }

    /// A wait ended by a signal: its timer, firing later, must neither wake the next wait
    /// nor leave a pending signal that would end it at once.
    func testALateTimerWakesNoLaterWait() async {
        let wake = WakeSignal()
        let signaller = Task.detached {
            try? await Task.sleep(for: .milliseconds(10))
            wake.signal()
        }
        let first = await elapsed { await wake.wait(timeout: .milliseconds(100)) }
        await signaller.value
        XCTAssertLessThan(first, 0.09, "ended by the signal")
        // The first wait's timer fires ~90 ms into this one, which must last its own 300 ms.
        let second = await elapsed { await wake.wait(timeout: .milliseconds(300)) }
        XCTAssertGreaterThanOrEqual(second, 0.29, "not woken by the earlier wait's timer")
        // Nor is an untimed wait ended by a stale timer: only the signal ends it.
        let late = Task.detached {
            try? await Task.sleep(for: .milliseconds(200))
            wake.signal()
        }
        let third = await elapsed { await wake.wait() }
        await late.value
        XCTAssertGreaterThanOrEqual(third, 0.19)
    }

    func testManyShortTimedWaitsAllReturn() async {
        let wake = WakeSignal()
        let t = await elapsed { for _ in 0..<200 { await wake.wait(timeout: .microseconds(100)) } }
        XCTAssertLessThan(t, 5)
    }

    func testCancellingTheWaitingTaskEndsTheWait() async {
        let wake = WakeSignal()
        let task = Task { await wake.wait() }
        try? await Task.sleep(for: .milliseconds(20))
        task.cancel()
        let t = await elapsed { await task.value }
        XCTAssertLessThan(t, 1)
    }
}
