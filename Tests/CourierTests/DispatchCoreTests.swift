// The dispatcher's decisions stepped without Redis, an executor or sleeps:
// DispatchCore takes events and a time, and returns the turn the loop would
// carry out. Time is a base instant plus offsets, so every test is exact.
import ExecutorProtocol
import SidekiqModel
import XCTest

@testable import JobDispatch

final class DispatchCoreTests: XCTestCase {
    private let t0 = ContinuousClock.now

    private func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int(seconds * 1000)) }

    private func core(
        concurrency: Int = 4, queues: [String] = ["default"], breaker: CircuitBreakerSettings = .init(), fetchAhead: Int? = nil
    ) throws -> DispatchCore {
        let plan = try QueuePlan(queues.map(QueueSpec.parse))
        return DispatchCore(
            settings: DispatcherSettings(concurrency: concurrency, plan: plan, breaker: breaker, fetchAhead: fetchAhead),
            policy: OutcomePolicy(clock: WallClock(now: { 1_700_000_000 })))
    }

    private func job(_ n: Int, queue: String = "default") -> ParsedJob {
        ParsedJob(
            FetchedJob(
                queue: queue, original: Array(#"{"class":"NoopJob","args":[],"jid":"jid\#(n)","retry":true,"queue":"\#(queue)"}"#.utf8),
                fetchedAt: t0))
    }

    private func exchangeRequest(_ turn: Turn, file: StaticString = #filePath, line: UInt = #line) -> ExchangeRequest? {
        guard case let .exchange(request) = turn.step else {
            XCTFail("expected an exchange, got \(turn.step)", file: file, line: line)
            return nil
        }
        return request
    }

    private func deliveries(_ turn: Turn) -> [Delivery] {
        turn.actions.flatMap { action -> [Delivery] in if case let .deliver(d) = action { return d } else { return [] } }
    }

    private func reports(_ turn: Turn) -> [JobReport] {
        turn.actions.compactMap { action in if case let .report(r) = action { return r } else { return nil } }
    }

    private func cancels(_ turn: Turn) -> [CancelReason] {
        turn.actions.compactMap { action in if case let .cancel(_, reason) = action { return reason } else { return nil } }
    }

    /// Fetches `jobs` in one exchange starting at `time`; returns their delivery ids.
    private func fetch(_ core: inout DispatchCore, _ jobs: [ParsedJob], at time: Double) -> [UInt64] {
        _ = exchangeRequest(core.next(now: at(time), watchers: nil))
        return deliveries(core.exchanged(jobs, emptyQueues: [], now: at(time), watchers: nil)).map(\.id)
    }

    func testFetchesWhatTheFreeTokensAllowAndRecordsOutcomesWithTheNextFetch() throws {
        var core = try core(concurrency: 4)
        let first = exchangeRequest(core.next(now: at(0), watchers: nil))
        XCTAssertEqual(first?.maxJobs, 4)
        XCTAssertEqual(first?.completions.count, 0)
        let delivered = deliveries(core.exchanged([job(1), job(2)], emptyQueues: [], now: at(0), watchers: nil))
        XCTAssertEqual(delivered.map(\.request.jid), ["jid1", "jid2"])
        XCTAssertEqual(exchangeRequest(core.next(now: at(0.1), watchers: nil))?.maxJobs, 2, "two tokens held")
        _ = core.exchanged([], emptyQueues: ["default"], now: at(0.1), watchers: nil)

        core.outcomesArrived([(delivered[0].id, .succeeded)])
        let turn = core.next(now: at(0.5), watchers: nil)
        XCTAssertEqual(reports(turn).map(\.decision.event), [.done])
        XCTAssertEqual(reports(turn).first?.seconds ?? 0, 0.5, accuracy: 0.001, "duration from the injected time")
        let request = exchangeRequest(turn)
        XCTAssertEqual(request?.completions.map(\.action), [.acknowledge])
        XCTAssertEqual(request?.maxJobs, 3, "the finished job's token is free for the round trip that records it")
        _ = core.exchanged([], emptyQueues: [], now: at(0.5), watchers: nil)
        XCTAssertEqual(core.running.count, 1)
    }

    func testShutdownWaitsForTheDeadlineThenPushesBackAndCancels() throws {
        var core = try core()
        let ids = fetch(&core, [job(1), job(2)], at: 0)
        core.stop(deadline: at(5))
        core.outcomesArrived([(ids[0], .succeeded)])
        let finishing = core.next(now: at(1), watchers: nil)
        XCTAssertEqual(exchangeRequest(finishing)?.maxJobs, 0, "stopping fetches nothing")
        _ = core.exchanged([], emptyQueues: [], now: at(1), watchers: nil)
        XCTAssertEqual(core.next(now: at(1), watchers: nil).step, .wait(until: at(5)), "waits for the other job until the deadline")

        let deadline = core.next(now: at(5), watchers: nil)
        XCTAssertEqual(cancels(deadline), [.shutdown])
        XCTAssertEqual(exchangeRequest(deadline)?.completions.map(\.action), [.requeueAtShutdown])
        XCTAssertEqual(core.shutdownCancelsSent, at(5))
        _ = core.exchanged([], emptyQueues: [], now: at(5), watchers: nil)
        // The abandoned job's late answer changes nothing.
        core.outcomesArrived([(ids[1], .succeeded)])
        XCTAssertEqual(core.next(now: at(6), watchers: nil).step, .finish)
    }

    func testQuietTakesTheWatchersOutOfRedisAndFetchesNothing() throws {
        var core = try core()
        XCTAssertTrue(core.quiet())
        XCTAssertFalse(core.quiet(), "quiet once")
        XCTAssertEqual(core.next(now: at(0), watchers: WatcherView(isDisarmed: false)).step, .quiesceWatchers)
        XCTAssertEqual(core.next(now: at(0), watchers: WatcherView()).step, .wait(until: nil), "quiet and idle: wait for stop")
    }

    func testBreakerOpensPausesFetchingAndProbesWithOneJob() throws {
        var breaker = CircuitBreakerSettings()
        breaker.consecutiveFailures = 2
        breaker.cooldown = .seconds(1)
        var core = try core(concurrency: 4, breaker: breaker)
        let ids = fetch(&core, [job(1), job(2)], at: 0)
        let down = ExecutionOutcome.executorUnavailable(reason: "connection refused", retryAfter: nil, mayHaveRun: false)
        core.outcomesArrived(ids.map { ($0, down) })
        let tripped = core.next(now: at(0.2), watchers: nil)
        let transitions = tripped.actions.compactMap { a -> CircuitBreaker.State? in
            if case let .breakerChanged(t) = a { return t.to } else { return nil }
        }
        XCTAssertEqual(transitions, [.open])
        XCTAssertEqual(reports(tripped).map(\.decision.event), [.requeued, .requeued], "not the jobs' fault")
        let request = exchangeRequest(tripped)
        XCTAssertEqual(request?.completions.map(\.action), [.requeue, .requeue])
        XCTAssertEqual(request?.maxJobs, 0, "open: nothing fetched")
        _ = core.exchanged([], emptyQueues: [], now: at(0.2), watchers: nil)
        XCTAssertEqual(core.next(now: at(0.3), watchers: nil).step, .wait(until: at(1.2)), "sleeps until the cool-down ends")
        XCTAssertNil(core.claimed(job(9), now: at(0.5)), "no claim is delivered while open")

        let probing = core.next(now: at(1.2), watchers: nil)
        XCTAssertEqual(
            probing.actions.compactMap { a -> CircuitBreaker.State? in if case let .breakerChanged(t) = a { return t.to } else { return nil } },
            [.halfOpen])
        XCTAssertEqual(reports(probing).map(\.decision.error), ["picked up while not accepting work"])
        XCTAssertEqual(exchangeRequest(probing)?.maxJobs, 1, "half-open: one probe job")
        let probe = deliveries(core.exchanged([job(3)], emptyQueues: [], now: at(1.2), watchers: nil))
        core.outcomesArrived([(probe[0].id, .succeeded)])
        let closed = core.next(now: at(1.3), watchers: nil)
        XCTAssertTrue(closed.actions.contains { if case let .breakerChanged(t) = $0 { return t.to == .closed } else { return false } })
        XCTAssertEqual(exchangeRequest(closed)?.maxJobs, 4, "closed: every token, the probe's too (recorded before the fetch)")
    }

    func testRetryAfterPausesFetchesAndClaimsUntilItEnds() throws {
        var core = try core()
        let ids = fetch(&core, [job(1)], at: 0)
        core.outcomesArrived([(ids[0], .executorUnavailable(reason: "executor busy (HTTP 429)", retryAfter: .seconds(3), mayHaveRun: false))])
        let paused = core.next(now: at(1), watchers: nil)
        XCTAssertTrue(
            paused.actions.contains { if case let .log(_, message, _) = $0 { return message.contains("Retry-After") } else { return false } })
        XCTAssertEqual(exchangeRequest(paused)?.maxJobs, 0)
        XCTAssertEqual(exchangeRequest(paused)?.completions.map(\.action), [.requeue])
        _ = core.exchanged([], emptyQueues: [], now: at(1), watchers: nil)
        XCTAssertFalse(core.acceptsClaims)
        XCTAssertEqual(core.next(now: at(2), watchers: nil).step, .wait(until: at(4)))
        XCTAssertEqual(exchangeRequest(core.next(now: at(4), watchers: nil))?.maxJobs, 4, "fetching again once the pause is over")
        XCTAssertTrue(core.acceptsClaims)
    }

    func testALostReplyIsReconciledThenTheOutcomesAreReplayed() throws {
        var core = try core()
        let ids = fetch(&core, [job(1)], at: 0)
        core.outcomesArrived([(ids[0], .succeeded)])
        XCTAssertNotNil(exchangeRequest(core.next(now: at(1), watchers: nil)))
        struct Lost: Error {}
        let failed = core.roundTripFailed(Lost(), now: at(1))
        XCTAssertEqual(failed.step, .backoff(until: at(1.05)))
        guard case let .reconcile(held) = core.next(now: at(1.05), watchers: nil).step else { return XCTFail("expected a reconcile") }
        XCTAssertEqual(held.count, 1, "the finished job is still ours until recorded")
        _ = core.reconciled(returned: 2)
        let replay = exchangeRequest(core.next(now: at(1.1), watchers: nil))
        XCTAssertEqual(replay?.completions.map(\.action), [.acknowledge], "the same completion again: it applies once")
        _ = core.exchanged([], emptyQueues: [], now: at(1.1), watchers: nil)
        XCTAssertEqual(core.running.count, 0)
    }

    func testALostClaimWaitsForTheWatchersBeforeReconciling() throws {
        var core = try core()
        core.claimLost()
        XCTAssertEqual(core.next(now: at(0), watchers: WatcherView(isDisarmed: false)).step, .quiesceWatchers)
        guard case .reconcile = core.next(now: at(0), watchers: WatcherView()).step else { return XCTFail("expected a reconcile") }
    }

    func testClaimsAreDeliveredAtOnceAndCountedWithReservedTokens() throws {
        var core = try core(concurrency: 3)
        let delivery = try XCTUnwrap(core.claimed(job(1), now: at(0)))
        XCTAssertEqual(delivery.request.jid, "jid1")
        // One more claim is armed (holding a token): two in flight or reserved, one free.
        let turn = core.next(now: at(0), watchers: WatcherView(reservedTokens: 1, isDisarmed: false))
        XCTAssertEqual(exchangeRequest(turn)?.maxJobs, 1)
        // The fetch finds the queue empty again: the free token becomes a claim.
        let armed = core.exchanged([], emptyQueues: ["default"], now: at(0), watchers: WatcherView(reservedTokens: 1, isDisarmed: false))
        XCTAssertTrue(armed.actions.contains { if case .arm("default", .claim) = $0 { return true } else { return false } })
        XCTAssertEqual(armed.step, .wait(until: nil))
    }

    /// A queue held back by a full cluster-wide limiter is neither armed nor polled in a spin: the loop waits
    /// for the script's hint (within 10 ms…1 s); with class limiters, idle queues get looks, never claims.
    func testAFullLimiterIsLookedAtAgainLaterAndClaimsDoNotBypassIt() throws {
        let plan = try QueuePlan(["default", "erp"].map(QueueSpec.parse))
        let limiters = Limiters([Limiter(name: "erp", kind: .concurrent, count: 1, queues: ["erp"])])
        var core = DispatchCore(
            settings: DispatcherSettings(concurrency: 4, plan: plan, limiters: limiters),
            policy: OutcomePolicy(clock: WallClock(now: { 1_700_000_000 })))
        let view = WatcherView(reservedTokens: 0, isDisarmed: false)
        _ = core.next(now: at(0), watchers: view)
        var turn = core.exchanged(
            [], emptyQueues: ["default"], now: at(0), watchers: view, limited: LimitedFetch(queues: ["erp"], recheck: .milliseconds(250)))
        XCTAssertTrue(turn.actions.contains { if case .arm("default", .claim) = $0 { return true } else { return false } })
        XCTAssertFalse(turn.actions.contains { if case .arm("erp", _) = $0 { return true } else { return false } }, "a limited queue is not empty")
        XCTAssertEqual(turn.step, .wait(until: at(0.25)))
        // The hint is bounded both ways.
        _ = core.next(now: at(0.25), watchers: view)
        turn = core.exchanged([], emptyQueues: [], now: at(0.25), watchers: view, limited: LimitedFetch(queues: ["erp"], recheck: .seconds(30)))
        XCTAssertEqual(turn.step, .wait(until: at(1.25)))
        _ = core.next(now: at(1.25), watchers: view)
        turn = core.exchanged([], emptyQueues: [], now: at(1.25), watchers: view, limited: LimitedFetch(queues: ["erp"], recheck: .zero))
        XCTAssertEqual(turn.step, .wait(until: at(1.26)))
        // Nothing held back: no timer.
        _ = core.next(now: at(1.26), watchers: view)
        XCTAssertEqual(core.exchanged([], emptyQueues: ["default"], now: at(1.26), watchers: view).step, .wait(until: nil))

        // A class limiter: any queue may hold its jobs, so an idle queue is looked at, not claimed.
        var classCore = DispatchCore(
            settings: DispatcherSettings(
                concurrency: 4, plan: plan, limiters: Limiters([Limiter(name: "api", kind: .bucket, count: 5, classes: ["ApiJob"])])),
            policy: OutcomePolicy(clock: WallClock(now: { 1_700_000_000 })))
        _ = classCore.next(now: at(0), watchers: view)
        let armed = classCore.exchanged([], emptyQueues: ["default", "erp"], now: at(0), watchers: view)
        XCTAssertTrue(armed.actions.contains { if case .arm("default", .look) = $0 { return true } else { return false } })
        XCTAssertFalse(armed.actions.contains { if case .arm(_, .claim) = $0 { return true } else { return false } })
    }

    func testABacklogTakesBackTheTokensHeldByClaims() throws {
        var core = try core(concurrency: 2, queues: ["a", "b"])
        _ = core.next(now: at(0), watchers: WatcherView(reservedTokens: 1, isDisarmed: false))
        let turn = core.exchanged([job(1, queue: "a")], emptyQueues: [], now: at(0), watchers: WatcherView(reservedTokens: 1, isDisarmed: false))
        XCTAssertTrue(turn.actions.contains { if case .disarmClaims = $0 { return true } else { return false } })
    }

    func testMalformedJobsGoToTheDeadSetWithoutADelivery() throws {
        var core = try core()
        _ = core.next(now: at(0), watchers: nil)
        let notAJob = ParsedJob(FetchedJob(queue: "default", original: Array(#"{"args":[]}"#.utf8), fetchedAt: t0))
        XCTAssertTrue(deliveries(core.exchanged([notAJob], emptyQueues: [], now: at(0), watchers: nil)).isEmpty)
        let turn = core.next(now: at(0), watchers: nil)
        XCTAssertEqual(reports(turn).map(\.decision.event), [.dead])
        guard case .kill = exchangeRequest(turn)?.completions.first?.action else { return XCTFail("expected the dead set") }
    }

    func testATimedOutJobIsCancelledInTheExecutorAndRetried() throws {
        var core = try core()
        let ids = fetch(&core, [job(1)], at: 0)
        core.outcomesArrived([(ids[0], .timedOut(after: .seconds(600)))])
        let turn = core.next(now: at(600), watchers: nil)
        XCTAssertEqual(cancels(turn), [.timeout])
        XCTAssertEqual(reports(turn).map(\.decision.event), [.retry])
    }

    func testACancelledLoopGivesUpOnRedisAtItsFirstFailure() throws {
        var core = try core()
        _ = fetch(&core, [job(1)], at: 0)
        core.cancelled(now: at(1))
        XCTAssertEqual(core.phase, .stopping(deadline: at(1)))
        let turn = core.next(now: at(1), watchers: nil)
        XCTAssertEqual(cancels(turn), [.shutdown])
        struct Down: Error {}
        XCTAssertEqual(core.roundTripFailed(Down(), now: at(1)).step, .finish, "the job stays in the in-progress list for recovery")
    }

    func testPerQueueLimitsCountRunningJobsAndHeldTokens() throws {
        let plan = try QueuePlan([QueueSpec(name: "a"), QueueSpec(name: "b")]).withLimits(["a": 2])
        var core = DispatchCore(settings: DispatcherSettings(concurrency: 10, plan: plan), policy: OutcomePolicy())
        _ = core.next(now: at(0), watchers: nil)
        _ = core.exchanged([job(1, queue: "a")], emptyQueues: [], now: at(0), watchers: nil)
        let request = exchangeRequest(core.next(now: at(0), watchers: WatcherView(reservedTokens: 1, isDisarmed: false, holdingQueues: ["a"])))
        XCTAssertEqual(request?.allowances, ["a": 0], "one running and one claim armed for a")
    }

    func testUnderABacklogFetchesWaitBrieflyForAFullRequest() throws {
        var core = try core(concurrency: 10, fetchAhead: 0)
        core.coalesceTarget = 5
        _ = core.next(now: at(0), watchers: nil)
        let ids = deliveries(core.exchanged((1...10).map { job($0) }, emptyQueues: [], now: at(0), watchers: nil)).map(\.id)
        XCTAssertTrue(core.backlog, "the fetch got all it asked for")
        core.outcomesArrived([(ids[0], .succeeded)])
        XCTAssertEqual(core.next(now: at(0.001), watchers: nil).step, .wait(until: at(0.004)), "one token free: wait for company")
        core.outcomesArrived((1..<5).map { (ids[$0], .succeeded) })
        let full = exchangeRequest(core.next(now: at(0.002), watchers: nil))
        XCTAssertEqual(full?.maxJobs, 5, "five free: a full request at once")
        XCTAssertEqual(full?.completions.count, 5)
        _ = core.exchanged((11...15).map { job($0) }, emptyQueues: [], now: at(0.002), watchers: nil)
        core.outcomesArrived([(ids[5], .succeeded)])
        XCTAssertEqual(core.next(now: at(0.003), watchers: nil).step, .wait(until: at(0.006)))
        XCTAssertEqual(exchangeRequest(core.next(now: at(0.006), watchers: nil))?.maxJobs, 1, "never held back longer than maxCoalesce")
        // No backlog (the queue ran dry): nothing is held back.
        _ = core.exchanged([], emptyQueues: ["default"], now: at(0.006), watchers: nil)
        XCTAssertFalse(core.backlog)
        core.outcomesArrived([(ids[6], .succeeded)])
        XCTAssertNotNil(exchangeRequest(core.next(now: at(0.007), watchers: nil)))
    }

    // MARK: - Fetching ahead

    /// Four quick jobs ran (1 ms each) and the fetch was full: the next fetch asks for four
    /// more than the free tokens, and the jobs past the tokens wait in `ahead`.
    private func coreWithFourAhead(fetchAhead: Int? = nil) throws -> (DispatchCore, running: [UInt64]) {
        var core = DispatchCore(
            settings: DispatcherSettings(concurrency: 4, plan: try QueuePlan([QueueSpec(name: "default")]), fetchAhead: fetchAhead),
            policy: OutcomePolicy(clock: WallClock(now: { 1_700_000_000 })))
        let first = fetch(&core, (1...4).map { job($0) }, at: 0)
        core.outcomesArrived(first.map { ($0, .succeeded) })
        let request = exchangeRequest(core.next(now: at(0.001), watchers: nil))
        XCTAssertEqual(request?.completions.count, 4)
        guard request?.maxJobs == 8 else {
            XCTAssertEqual(request?.maxJobs, 8, "four free tokens and four ahead")
            return (core, [])
        }
        let started = deliveries(core.exchanged((5...12).map { job($0) }, emptyQueues: [], now: at(0.001), watchers: nil))
        XCTAssertEqual(started.map(\.request.jid), ["jid5", "jid6", "jid7", "jid8"], "as many start as tokens are free")
        XCTAssertEqual(core.ahead.map(\.job.original).count, 4)
        return (core, started.map(\.id))
    }

    func testUnderABacklogOfQuickJobsJobsFetchedAheadStartAsTokensFree() throws {
        var (core, running) = try coreWithFourAhead()
        XCTAssertEqual(core.next(now: at(0.002), watchers: nil).step, .wait(until: at(0.001) + .seconds(1)), "every token busy, the buffer full")
        core.outcomesArrived([(running[0], .succeeded), (running[1], .succeeded)])
        let turn = core.next(now: at(0.003), watchers: nil)
        XCTAssertEqual(deliveries(turn).map(\.request.jid), ["jid9", "jid10"], "the oldest fetched ahead start on the freed tokens")
        XCTAssertEqual(deliveries(turn).first.map { _ in core.running.count }, 6, "4 running, 2 finished awaiting their round trip")
        let request = exchangeRequest(turn)
        XCTAssertEqual(request?.completions.map(\.action), [.acknowledge, .acknowledge])
        XCTAssertEqual(request?.maxJobs, 2, "no token free; room for two ahead")
    }

    func testJobsFetchedAheadWaitBrieflyForTheTokensOfAFullRequest() throws {
        var (core, running) = try coreWithFourAhead()
        core.coalesceTarget = 4
        core.outcomesArrived([(running[0], .succeeded)])
        let held = core.next(now: at(0.002), watchers: nil)
        XCTAssertTrue(deliveries(held).isEmpty, "one token free, three jobs still running: wait for company")
        XCTAssertEqual(held.step, .wait(until: at(0.005)))
        let late = core.next(now: at(0.005), watchers: nil)
        XCTAssertEqual(deliveries(late).map(\.request.jid), ["jid9"], "never held longer than maxCoalesce")
    }

    func testJobsFetchedAheadGoBackUntouchedAtQuietOrWhenNoTokenFreesInTime() throws {
        var (quiet, _) = try coreWithFourAhead()
        XCTAssertTrue(quiet.quiet())
        let turn = quiet.next(now: at(0.002), watchers: nil)
        XCTAssertTrue(deliveries(turn).isEmpty)
        XCTAssertTrue(reports(turn).isEmpty, "they never started: no job outcome")
        XCTAssertEqual(exchangeRequest(turn)?.completions.map(\.action), Array(repeating: .requeue, count: 4))
        XCTAssertEqual(exchangeRequest(turn)?.maxJobs, 0)
        XCTAssertTrue(quiet.ahead.isEmpty)

        var stale = try coreWithFourAhead().0
        let late = stale.next(now: at(1.002), watchers: nil)
        XCTAssertTrue(deliveries(late).isEmpty)
        XCTAssertEqual(
            exchangeRequest(late)?.completions.map(\.action), Array(repeating: .requeue, count: 4),
            "a second without a free token: back to the queue, for another process")
    }

    func testTokensRiseToTheExecutorsCapacityAndByTransitTokensWhileJobsAreShort() throws {
        var core = try core(concurrency: 4, fetchAhead: 0)
        core.transitTokensAllowed = TransitTokens.Allowance(toCapacity: 2, inTransit: 3)
        XCTAssertEqual(exchangeRequest(core.next(now: at(0), watchers: nil))?.maxJobs, 6, "no job ended yet: up to the capacity")
        let ids = deliveries(core.exchanged((1...6).map { job($0) }, emptyQueues: [], now: at(0), watchers: nil)).map(\.id)
        core.outcomesArrived([(ids[0], .succeeded)])
        XCTAssertEqual(
            exchangeRequest(core.next(now: at(0.05), watchers: nil))?.maxJobs, 1 + 3, "50 ms jobs: the freed token and the 3 transit tokens")
        XCTAssertEqual(core.tokenLimit, 9)

        var slow = try self.core(concurrency: 4, fetchAhead: 0)
        slow.transitTokensAllowed = TransitTokens.Allowance(toCapacity: 2, inTransit: 3)
        _ = exchangeRequest(slow.next(now: at(0), watchers: nil))
        let slowIDs = deliveries(slow.exchanged((1...6).map { job($0) }, emptyQueues: [], now: at(0), watchers: nil)).map(\.id)
        slow.outcomesArrived([(slowIDs[0], .succeeded)])
        XCTAssertEqual(exchangeRequest(slow.next(now: at(2), watchers: nil))?.maxJobs, 1, "2 s jobs: the capacity, no transit tokens")
        XCTAssertEqual(slow.tokenLimit, 6)
    }

    func testTokensAreSizedFromTheExecutorsCapacityUnlessTheConcurrencyIsCouriersOwn() {
        typealias A = TransitTokens.Allowance
        let sidecar = ExecutorHealth(features: ["cancel", "stream"], capacity: 50, maxStreamJobs: 100)
        XCTAssertEqual(TransitTokens.allowed(base: 10, explicit: false, health: sidecar), A(toCapacity: 40, inTransit: 13), "50 and a quarter")
        XCTAssertEqual(TransitTokens.allowed(base: 50, explicit: false, health: sidecar), A(toCapacity: 0, inTransit: 13), "RAILS_MAX_THREADS 50")
        XCTAssertEqual(TransitTokens.allowed(base: 60, explicit: false, health: sidecar), A(toCapacity: 0, inTransit: 3))
        XCTAssertEqual(TransitTokens.allowed(base: 50, explicit: true, health: sidecar), .none, "-c is a hard cap")
        let small = ExecutorHealth(features: ["stream"], capacity: 5)
        XCTAssertEqual(TransitTokens.allowed(base: 10, explicit: false, health: small), .none, "10 ≥ 5 + 2")
        let noStreams = ExecutorHealth(features: ["cancel"], capacity: 50)
        XCTAssertEqual(TransitTokens.allowed(base: 10, explicit: false, health: noStreams), .none, "no streams")
        XCTAssertEqual(TransitTokens.allowed(base: 10, explicit: false, health: ExecutorHealth(features: ["stream"])), .none, "no capacity")
        XCTAssertEqual(TransitTokens.allowed(base: 10, explicit: false, health: nil), .none)
        let huge = TransitTokens.allowed(base: 1, explicit: false, health: ExecutorHealth(features: ["stream"], capacity: 100_000))
        XCTAssertEqual(huge.toCapacity + huge.inTransit, TransitTokens.maxExtra, "bounded")
    }

    func testSlowJobsAreNotFetchedAheadNorWithFetchAheadZero() throws {
        for (fetchAhead, ran, why) in [(nil, 0.05, "50 ms jobs: only the free tokens"), (0 as Int?, 0.001, "--fetch-ahead 0")] {
            var core = try core(concurrency: 4, fetchAhead: fetchAhead)
            let ids = fetch(&core, (1...4).map { job($0) }, at: 0)
            core.outcomesArrived(ids.map { ($0, .succeeded) })
            XCTAssertEqual(exchangeRequest(core.next(now: at(ran), watchers: nil))?.maxJobs, 4, why)
        }
    }

    func testAReconcileKnowsTheJobsFetchedAhead() throws {
        var (core, _) = try coreWithFourAhead()
        struct Lost: Error {}
        _ = core.next(now: at(0.002), watchers: nil)
        core.outcomesArrived([])
        _ = core.roundTripFailed(Lost(), now: at(0.002))
        guard case let .reconcile(held) = core.next(now: at(0.1), watchers: nil).step else { return XCTFail("expected a reconcile") }
        XCTAssertEqual(held.count, 8, "4 running and 4 fetched ahead stay ours")
    }
}
