import SidekiqModel

// A StatusSnapshot as the screen `courier status` prints and as the one JSON
// object `--json` prints (schema in docs/operations.md, "courier status").
// Pure functions of the snapshot: the tests compare their output verbatim.

extension StatusSnapshot {
    /// The screen: totals, rates and sets, then a table each of queues, processes and tenants.
    public func text() -> String {
        var out = "courier status  \(redis)\(namespace.map { "  namespace \($0)" } ?? "")  \(Self.utcTime(takenAt)) UTC\n"
        out += "processed \(processed) (today \(processedToday))  failed \(failed) (today \(failedToday))"
        out += "  busy \(busy)/\(concurrency)  enqueued \(enqueued)  processes \(processes.count)\n"
        if let p = rates.processed, let f = rates.failed {
            out += "last minute  processed \(p)  failed \(f)  (\(Self.decimal(Double(p) / 60, places: 1))/s)"
        } else {
            out += "last minute  n/a"
        }
        out += rates.note.map { "  [\($0)]" } ?? ""
        out += "\nretry \(retry)  scheduled \(scheduled)  dead \(dead)\n"

        out +=
            "\n"
            + Self.table(
                ["QUEUE", "DEPTH", "LATENCY"], queues.map { [$0.name, "\($0.depth)", Self.duration($0.latency)] },
                right: [1, 2], empty: "(no queues)")
        out +=
            "\n"
            + Self.table(
                ["PROCESS", "BUSY", "QUIET", "BREAKER", "HELD", "BEAT", "RSS", "VERSION", "QUEUES"],
                processes.map { p in
                    [
                        p.identity, "\(p.busy)/\(p.concurrency)", p.quiet ? "yes" : "no", p.courier?.breaker ?? "-",
                        p.courier.map { "\($0.inFlight)" } ?? "-", p.beat.map { Self.duration(max(0, takenAt - $0)) + " ago" } ?? "-",
                        p.rssKB.map { "\(($0 + 512) / 1024) MB" } ?? "-", p.version ?? "sidekiq <7", p.queues.joined(separator: ","),
                    ]
                }, right: [1, 4, 5, 6], empty: "(no processes)")
        if !tenants.isEmpty {
            out +=
                "\n"
                + Self.table(
                    ["TENANT", "BUSY", tenantsSampled ? "WAITING*" : "WAITING"], tenants.map { [$0.name, "\($0.busy)", "\($0.waiting)"] },
                    right: [1, 2], empty: "")
            if tenantsSampled { out += "* counted among the oldest jobs of each queue only\n" }
        }
        if !periodic.isEmpty || periodicLeader != nil {
            out +=
                "\n"
                + Self.table(
                    ["PERIODIC", "CRON", "TZ", "CLASS", "QUEUE", "NEXT (UTC)", "LAST TICK (UTC)"],
                    periodic.map { j in
                        [
                            j.name, j.cron, j.zone, j.jobClass, j.queue, j.next.map { Self.utcTime(Double($0)) } ?? "never",
                            j.lastTick.map { Self.utcTime(Double($0)) } ?? "-",
                        ]
                    }, empty: "(no periodic jobs published)")
            out += "periodic leader: \(periodicLeader ?? "none")\n"
        }
        if !limiters.isEmpty {
            out +=
                "\n"
                + Self.table(
                    ["LIMITER", "TYPE", "USED", "LIMIT", "PER", "APPLIES TO"],
                    limiters.map { l in
                        let d = l.limiter
                        let scope = d.classes.map { "class \($0)" } + d.queues.map { "queue \($0)" }
                        return [
                            d.name, d.kind.rawValue, "\(l.used)", "\(d.count)", d.kind == .concurrent ? "at once" : Self.duration(Double(d.interval)),
                            scope.joined(separator: ", "),
                        ]
                    }, right: [2, 3], empty: "")
        }
        return out
    }

    /// One JSON object on one line (keys in a fixed order).
    public func json() -> String {
        func int(_ n: Int?) -> String { n.map { "\($0)" } ?? "null" }
        func str(_ s: String?) -> String { s.map(JSONWriter.string) ?? "null" }
        func num(_ d: Double?) -> String { d.map { JSONWriter.float(($0 * 1000).rounded() / 1000) } ?? "null" }
        let queueItems = queues.map { "{\"name\":\(str($0.name)),\"depth\":\($0.depth),\"latency\":\(num($0.latency))}" }
        let processItems = processes.map { p in
            let courier =
                p.courier.map {
                    "{\"breaker\":\(str($0.breaker)),\"in_flight\":\($0.inFlight),\"executor\":\(str($0.executor))}"
                } ?? "null"
            return "{\"identity\":\(str(p.identity)),\"hostname\":\(str(p.hostname)),\"pid\":\(int(p.pid)),\"tag\":\(str(p.tag)),"
                + "\"version\":\(str(p.version)),\"queues\":\(JSONWriter.array(p.queues)),\"concurrency\":\(p.concurrency),"
                + "\"busy\":\(p.busy),\"quiet\":\(p.quiet),\"beat\":\(num(p.beat)),\"rss_kb\":\(int(p.rssKB)),\"courier\":\(courier)}"
        }
        let periodicItems = periodic.map { j in
            "{\"name\":\(str(j.name)),\"cron\":\(str(j.cron)),\"tz\":\(str(j.zone)),\"class\":\(str(j.jobClass)),"
                + "\"queue\":\(str(j.queue)),\"next\":\(int(j.next)),\"last_tick\":\(int(j.lastTick))}"
        }
        let limiterItems = limiters.map { l in
            "{\"name\":\(str(l.limiter.name)),\"used\":\(l.used),\"declaration\":\(l.limiter.json)}"
        }
        let tenantItems = tenants.map { "{\"name\":\(str($0.name)),\"busy\":\($0.busy),\"waiting\":\($0.waiting)}" }
        return "{\"taken_at\":\(num(takenAt)),\"redis\":\(str(redis)),\"namespace\":\(str(namespace)),"
            + "\"processed\":\(processed),\"failed\":\(failed),\"processed_today\":\(processedToday),\"failed_today\":\(failedToday),"
            + "\"busy\":\(busy),\"concurrency\":\(concurrency),\"enqueued\":\(enqueued),"
            + "\"rates\":{\"processed\":\(int(rates.processed)),\"failed\":\(int(rates.failed)),\"window\":\(num(rates.window)),"
            + "\"source\":\(str(rates.source?.rawValue)),\"note\":\(str(rates.note))},"
            + "\"sets\":{\"retry\":\(retry),\"schedule\":\(scheduled),\"dead\":\(dead)},"
            + "\"queues\":[\(queueItems.joined(separator: ","))],\"processes\":[\(processItems.joined(separator: ","))],"
            + "\"tenants\":[\(tenantItems.joined(separator: ","))],\"tenants_sampled\":\(tenantsSampled),"
            + "\"periodic\":{\"leader\":\(str(periodicLeader)),\"jobs\":[\(periodicItems.joined(separator: ","))]},"
            + "\"limiters\":[\(limiterItems.joined(separator: ","))]}"
    }

    /// Columns padded to their widest cell; the columns in `right` (numbers) right-aligned.
    static func table(_ header: [String], _ rows: [[String]], right: Set<Int> = [], empty: String) -> String {
        if rows.isEmpty { return header.joined(separator: "  ") + "\n" + (empty.isEmpty ? "" : empty + "\n") }
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            var line = ""
            for (column, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                if column > 0 { line += "  " }
                line += right.contains(column) ? pad + cell : column == row.count - 1 ? cell : cell + pad
            }
            return line
        }.joined(separator: "\n") + "\n"
    }

    /// `0.4s`, `12.3s`, `4m05s`, `3h12m`, `2d04h`.
    static func duration(_ seconds: Double) -> String {
        if seconds < 60 { return decimal(seconds, places: 1) + "s" }
        let s = Int(seconds)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if s < 3600 { return "\(s / 60)m\(two(s % 60))s" }
        if s < 86400 { return "\(s / 3600)h\(two(s % 3600 / 60))m" }
        return "\(s / 86400)d\(two(s % 86400 / 3600))h"
    }

    static func decimal(_ value: Double, places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = scaled / Int(scale)
        let fraction = String(scaled % Int(scale))
        return "\(whole)." + String(repeating: "0", count: places - fraction.count) + fraction
    }

    /// `2026-11-22 11:43:14`.
    static func utcTime(_ epoch: Double) -> String {
        let day = WallClock.utcDay(epoch)
        let s = Int(epoch.rounded(.down)) % 86400
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(day) \(two(s / 3600)):\(two(s % 3600 / 60)):\(two(s % 60))"
    }
}
