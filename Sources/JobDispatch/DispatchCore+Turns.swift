import CourierSupport
import ExecutorProtocol
import Logging
import SidekiqModel

// The dispatcher's turns: what the loop does next (`next`), and what follows
// a round trip's reply (`exchanged`), its failure (`roundTripFailed`) and a
// reconcile (`reconciled`). A round trip carries every outcome recorded since
// the last one with the next fetch, so a busy courier costs about one Redis
// call per batch of jobs.

extension DispatchCore {
    /// Records what finished, applies the shutdown deadline, and picks the next step.
    mutating func next(now: ContinuousClock.Instant, watchers: WatcherView?) -> Turn {
        var turn = Turn()
        recordArrived(now: now, into: &turn)
        startAhead(now: now, watchers: watchers, into: &turn)
        recordAdopted(now: now, into: &turn)
        pushBackAtDeadline(now: now, into: &turn)

        if let watchers {
            // Not accepting work: take the watchers out of Redis. What they claimed
            // meanwhile comes back adopted on the next turn.
            if phase != .running, !watchers.isDisarmed {
                turn.step = .quiesceWatchers
                return turn
            }
            if breaker.state != .closed || pausedUntil != nil, watchers.reservedTokens > 0 {
                turn.actions.append(.disarmClaims)
            }
        }

        let (maxJobs, allowances) = fetchAllowance(now: now, watchers: watchers, into: &turn)
        if let until = coalesce(maxJobs: maxJobs, now: now) {
            turn.step = .wait(until: min(until, aheadHeldUntil ?? until))
            return turn
        }
        if pending.isEmpty && maxJobs == 0 && !needsReconcile {
            turn.step = idleStep(now: now, watchers: watchers)
            if case let .wait(until) = turn.step, let held = aheadHeldUntil { turn.step = .wait(until: min(until ?? held, held)) }
            return turn
        }
        if needsReconcile {
            // A watcher still inside Redis could claim a job the reconcile would not know of.
            if let watchers, !watchers.isDisarmed {
                turn.step = .quiesceWatchers
            } else {
                // Adopted jobs are in `running` by now: their decisions apply with the next exchange.
                turn.step = .reconcile(held: running.allJobs() + ahead.map(\.job))
            }
            return turn
        }
        sending = pending.count
        asked = ExchangeRequest(completions: pending.map(\.completion), maxJobs: maxJobs, allowances: allowances)
        turn.step = .exchange(asked)
        return turn
    }

    /// The round trip under way succeeded: its completions are recorded, its jobs go to the executor.
    /// `limited`: the queues a full cluster-wide limiter held back, and when it may have room.
    mutating func exchanged(
        _ jobs: [ParsedJob], emptyQueues: [String], now: ContinuousClock.Instant, watchers: WatcherView?,
        limited: LimitedFetch = LimitedFetch()
    ) -> Turn {
        var turn = Turn()
        if redisFailures > 0 {
            turn.actions.append(.log(.notice, "redis round trips work again", ["failed_attempts": "\(redisFailures)"]))
            redisFailures = 0
        }
        for (id, _) in pending.prefix(sending) { running.remove(id) }
        pending.removeFirst(sending)
        sending = 0
        // As many start as tokens are free; the rest were fetched ahead and wait for one.
        let free = freeTokens(reserved: watchers?.reservedTokens ?? 0)
        ahead.append(contentsOf: jobs)
        let starting = ahead.prefix(free)
        ahead.removeFirst(starting.count)
        aheadSince = ahead.isEmpty ? nil : aheadSince ?? now
        let deliveries = starting.compactMap { register($0, now: now) }
        for delivery in deliveries { breaker.startedJob(delivery.id) }
        if !deliveries.isEmpty { turn.actions.append(.deliver(deliveries)) }
        turn.actions.append(.roundTripDone(inFlight: running.count))

        let maxJobs = asked.maxJobs
        guard maxJobs > 0 else { return turn }
        backlog = jobs.count == maxJobs
        // Held back by a limiter with tokens to spare: look again when it may have room
        // (a lease ended on another courier, a rate window moved on), within 10 ms…1 s.
        let limitRecheckAt =
            limited.queues.isEmpty || jobs.count == maxJobs
            ? nil : now + min(.seconds(1), max(.milliseconds(10), limited.recheck ?? .milliseconds(100)))
        guard let watchers else {
            // A bare dispatcher (no watchers) polls empty queues once a second.
            if jobs.isEmpty { turn.step = .wait(until: min(now + .seconds(1), limitRecheckAt ?? now + .seconds(1))) }
            return turn
        }
        if jobs.count < maxJobs {
            // Idle tokens wait in Redis as claims; without one to spare, a look wakes us.
            var spare = breaker.state == .closed && pausedUntil == nil ? free - starting.count : 0
            for queue in emptyQueues {
                let capLeft = asked.allowances[queue].map { cap in cap - jobs.lazy.filter { $0.job.queue == queue }.count } ?? 1
                if spare > 0 && capLeft > 0 && settings.limiters.allowsClaims(on: queue) {
                    turn.actions.append(.arm(queue: queue, mode: .claim))
                    spare -= 1
                } else {
                    turn.actions.append(.arm(queue: queue, mode: .look))
                }
            }
            if jobs.isEmpty { turn.step = .wait(until: limitRecheckAt) }
        } else if watchers.reservedTokens > 0 {
            // A backlog: tokens held for empty queues are better spent on it.
            turn.actions.append(.disarmClaims)
        }
        return turn
    }

    /// A round trip (exchange or reconcile) failed. The script may have run before
    /// the reply was lost: reconcile first, then replay (each completion applies
    /// only if its job is still ours, so a replay changes nothing).
    mutating func roundTripFailed(_ error: any Error, now: ContinuousClock.Instant) -> Turn {
        var turn = Turn()
        sending = 0
        redisFailures += 1
        turn.actions.append(.roundTripFailed(kind: error.metricKind))
        if redisFailures == 1 || redisFailures % 50 == 0 {
            turn.actions.append(
                .log(
                    .error, "redis round trip failed; outcomes kept and retried",
                    [
                        "error": "\(error)", "pending": "\(pending.count)", "attempt": "\(redisFailures)",
                    ]))
        }
        needsReconcile = true
        if case let .stopping(deadline) = phase, abandoned || now > deadline + .seconds(10) {
            // Nothing is lost: what is left stays in this process's in-progress
            // lists, and a survivor pushes it back once this heartbeat expires.
            turn.actions.append(
                .log(
                    .error, "giving up on Redis at shutdown; unacknowledged jobs stay in the in-progress list for recovery",
                    ["jobs": "\(running.count)"]))
            turn.step = .finish
            return turn
        }
        turn.step = .backoff(until: now + .milliseconds(min(1_000, 25 << min(redisFailures, 6))))
        return turn
    }

    /// The reconcile after a lost reply pushed back `returned` jobs nobody knew of.
    mutating func reconciled(returned: Int) -> Turn {
        needsReconcile = false
        var turn = Turn()
        if returned > 0 { turn.actions.append(.log(.notice, "pushed back jobs whose fetch reply was lost", ["count": "\(returned)"])) }
        return turn
    }

    // MARK: - Parts of a turn

    /// Decides what happens to every job the executor finished.
    private mutating func recordArrived(now: ContinuousClock.Instant, into turn: inout Turn) {
        let results = arrived
        arrived.removeAll(keepingCapacity: true)
        for (id, outcome) in results {
            guard let entry = running[id], entry.phase == .executing else { continue }
            running.setPhase(id, .finished)
            if outcome.ran {
                let seconds = (now - entry.startedAt).inSeconds
                recentJobSeconds = recentJobSeconds.map { $0 * 0.9 + seconds * 0.1 } ?? seconds
            }
            let decision = decide(entry, outcome: outcome)
            if let t = breaker.record(id, executorFailure: outcome.isExecutorFailure, now: now) { turn.actions.append(.breakerChanged(t)) }
            if case let .executorUnavailable(_, retryAfter?, _) = outcome {
                let until = now + retryAfter
                if pausedUntil.map({ $0 < until }) ?? true {
                    pausedUntil = until
                    turn.actions.append(
                        .log(
                            .warning, "executor asked to wait (Retry-After); fetching paused",
                            ["seconds": "\(retryAfter.components.seconds)"]))
                }
            }
            turn.actions.append(.report(JobReport(entry: entry, outcome: outcome, decision: decision, seconds: (now - entry.startedAt).inSeconds)))
            pending.append((id, Completion(job: entry.job, action: decision.action)))
            // Given up on (a failed attempt now): stop it in the executor before its retry runs.
            if case .timedOut = outcome { turn.actions.append(.cancel(entry, .timeout)) }
        }
    }

    /// Jobs fetched ahead start on the tokens free now; while no work is accepted (quiet,
    /// stopping, the breaker not closed, a Retry-After pause), or once the oldest has waited
    /// `maxAheadWait`, they all go back to the head of their queues untouched instead (no
    /// stats, no job log line: they never started).
    private mutating func startAhead(now: ContinuousClock.Instant, watchers: WatcherView?, into turn: inout Turn) {
        guard !ahead.isEmpty else { return }
        let accepting = phase == .running && breaker.state == .closed && pausedUntil.map { now >= $0 } ?? true
        if !accepting || aheadSince.map({ now - $0 >= Self.maxAheadWait }) == true {
            for parsed in ahead {
                let id = takeID()
                running.insert(id, RunningJob(unstartedJob: parsed.job, startedAtWall: policy.clock.now(), startedAt: now))
                pending.append((id, Completion(job: parsed.job, action: .requeue)))
            }
            turn.actions.append(.log(.debug, "jobs fetched ahead went back to their queues", ["count": "\(ahead.count)"]))
            ahead.removeAll()
            aheadSince = nil
            aheadHeldSince = nil
            return
        }
        // As a fetch does (`coalesce`), wait a little for the tokens of a fuller request while
        // jobs still run: an executor that answers a stream's jobs a few at a time would
        // otherwise get one small request per answer.
        let free = freeTokens(reserved: watchers?.reservedTokens ?? 0)
        let executing = running.count - pending.count
        guard free > 0 else {
            aheadHeldSince = nil
            return
        }
        if free < min(ahead.count, tokenLimit, max(1, coalesceTarget)), executing > 0 {
            let since = aheadHeldSince ?? now
            if now < since + Self.maxCoalesce {
                aheadHeldSince = since
                return
            }
        }
        aheadHeldSince = nil
        let deliveries = takeAhead(free, now: now)
        if !deliveries.isEmpty { turn.actions.append(.deliver(deliveries)) }
    }

    /// Until when jobs fetched ahead wait for company (nil: they do not).
    private var aheadHeldUntil: ContinuousClock.Instant? { ahead.isEmpty ? nil : aheadHeldSince.map { $0 + Self.maxCoalesce } }

    /// Registers up to `count` jobs fetched ahead, oldest first; their deliveries.
    mutating func takeAhead(_ count: Int, now: ContinuousClock.Instant) -> [Delivery] {
        let starting = ahead.prefix(max(0, count))
        guard !starting.isEmpty else { return [] }
        ahead.removeFirst(starting.count)
        if ahead.isEmpty { aheadSince = nil }
        let deliveries = starting.compactMap { register($0, now: now) }
        for delivery in deliveries { breaker.startedJob(delivery.id) }
        return deliveries
    }

    /// Jobs that never reach the executor (malformed, poison pills, claims refused) with their decision.
    private mutating func recordAdopted(now: ContinuousClock.Instant, into turn: inout Turn) {
        let jobs = adopted
        adopted.removeAll()
        for (job, decision) in jobs {
            let payload = try? JobPayload(raw: job.original)
            let jobClass = payload?.displayClass ?? "unknown"
            let entry = RunningJob(
                job: job, payload: payload, jid: payload?.jid ?? "", jobClass: jobClass,
                metricsClass: payload?.metricsClass(displayClass: jobClass) ?? jobClass, attempt: 0,
                tenant: payload.flatMap(settings.tenant.tenant(of:)), latency: nil, traceparent: nil,
                startedAtWall: policy.clock.now(), startedAt: now, phase: .finished)
            let id = takeID()
            running.insert(id, entry)
            turn.actions.append(.report(JobReport(entry: entry, outcome: nil, decision: decision, seconds: 0)))
            pending.append((id, Completion(job: job, action: decision.action)))
        }
    }

    /// At the shutdown deadline, what still runs goes back to its queue (the cancel goes out first).
    private mutating func pushBackAtDeadline(now: ContinuousClock.Instant, into turn: inout Turn) {
        guard case let .stopping(deadline) = phase, now >= deadline else { return }
        for id in running.executingIDs() {
            guard let entry = running[id] else { continue }
            running.setPhase(id, .abandoned)
            turn.actions.append(.log(.warning, "shutdown timeout: job pushed back to its queue", entry.logMetadata))
            turn.actions.append(.cancel(entry, .shutdown))
            if shutdownCancelsSent == nil { shutdownCancelsSent = now }
            pending.append((id, Completion(job: entry.job, action: .requeueAtShutdown)))
        }
    }

    /// How many jobs may be fetched now, overall and per capped queue.
    private mutating func fetchAllowance(
        now: ContinuousClock.Instant, watchers: WatcherView?,
        into turn: inout Turn
    ) -> (Int, [String: Int]) {
        guard phase == .running && !needsReconcile else { return (0, [:]) }
        let (breakerAllowance, t) = breaker.allowance(now: now)
        if let t { turn.actions.append(.breakerChanged(t)) }
        // The watcher view was read before this lock was taken: a claim adds to `running`
        // before it gives its token back, so no job is ever neither running nor reserved.
        let reserved = watchers?.reservedTokens ?? 0
        // A finished job's token is free for the same round trip that records it: the
        // script acknowledges before it fetches, so the limit holds inside Redis too.
        let held = running.count - pending.count
        var maxJobs = max(0, tokenLimit - held - reserved)
        if let b = breakerAllowance { maxJobs = min(maxJobs, b) }
        if let until = pausedUntil {
            if now < until { maxJobs = 0 } else { pausedUntil = nil }
        }
        // Under a backlog of quick jobs, fetch ahead too (see `ahead`).
        if backlog, breakerAllowance == nil, pausedUntil == nil, let recent = recentJobSeconds, recent < Self.fetchAheadBelow {
            maxJobs += max(0, settings.fetchAhead - ahead.count)
        }
        // A claim found work but every spare token waits in another queue's claim:
        // take them back, so the next fetch can see whether a backlog is there.
        if claimDelivered {
            claimDelivered = false
            if maxJobs == 0, reserved > 0, tokenLimit - held > 0, watchers != nil {
                turn.actions.append(.disarmClaims)
            }
        }
        var allowances: [String: Int] = [:]
        if settings.plan.queues.contains(where: { $0.limit != nil }) {
            var perQueue = running.countByQueue()
            for (_, completion) in pending { perQueue[completion.job.queue, default: 0] -= 1 }
            for spec in settings.plan.queues {
                if let limit = spec.limit {
                    let held = watchers?.holdingQueues.contains(spec.name) == true ? 1 : 0
                    allowances[spec.name] = max(0, limit - perQueue[spec.name, default: 0] - held)
                }
            }
        }
        return (maxJobs, allowances)
    }

    /// Under a backlog, waits (at most `maxCoalesce`) until enough tokens are free for a
    /// full request, while jobs still run to free them; returns until when, or nil to go
    /// ahead. A queue that is not backlogged is never held back: pickup latency stays.
    private mutating func coalesce(maxJobs: Int, now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        let executing = running.count - pending.count
        guard coalesceTarget > 1, backlog, phase == .running, !needsReconcile, maxJobs < coalesceTarget, executing > 0,
            maxJobs < tokenLimit
        else {
            coalescingSince = nil
            return nil
        }
        let since = coalescingSince ?? now
        let until = since + Self.maxCoalesce
        guard now < until else {
            coalescingSince = nil
            return nil
        }
        coalescingSince = since
        return until
    }

    /// Nothing to record or fetch: finish at shutdown once nothing is held, else wait for an event or a timer.
    private func idleStep(now: ContinuousClock.Instant, watchers: WatcherView?) -> DispatchStep {
        if case let .stopping(deadline) = phase {
            if running.isEmpty && adopted.isEmpty && ahead.isEmpty && watchers?.isDisarmed != false { return .finish }
            return .wait(until: max(deadline, now + .milliseconds(1)))
        }
        if phase == .running, let reopen = breaker.openUntil ?? pausedUntil {
            return .wait(until: max(reopen, now + .milliseconds(1)))
        }
        // Jobs fetched ahead go back if no token frees for them in time.
        if let since = aheadSince, !ahead.isEmpty { return .wait(until: max(since + Self.maxAheadWait, now + .milliseconds(1))) }
        return .wait(until: nil)
    }
}

extension RunningJob {
    /// The fields every job log line carries.
    var logMetadata: Logger.Metadata {
        var m: Logger.Metadata = ["jid": .string(jid), "class": .string(jobClass), "queue": .string(job.queue), "attempt": .string(String(attempt))]
        if let tenant { m["tenant"] = .string(tenant) }
        if let traceparent { m["trace_id"] = .string(String(TraceParent.traceID(traceparent))) }
        return m
    }
}

extension Duration {
    /// Seconds as a Double (for logs and histograms).
    var inSeconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
