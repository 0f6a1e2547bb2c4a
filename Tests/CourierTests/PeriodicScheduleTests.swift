// Pure tests of periodic jobs: the cron parser (also fuzzed against a
// brute-force scan), time zones from the system tz database against libc,
// daylight-saving behaviour, the missed-tick plan and the `periodic:` config.
import Config
import Foundation
import SidekiqModel
import XCTest

final class PeriodicScheduleTests: XCTestCase {
    func zone(_ name: String) throws -> ZoneRules {
        try ZoneRules(name: name, tzif: Array(try Data(contentsOf: URL(fileURLWithPath: "/usr/share/zoneinfo/" + name))))
    }

    func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int = 0) -> Int {
        Civil.days(year: y, month: mo, day: d) * 86400 + h * 3600 + mi * 60 + s
    }

    func testParsesFieldsNamesMacrosAndRefusesNonsense() throws {
        let e = try CronExpression("*/15 9-17 * JAN,jul mon-fri")
        XCTAssertFalse(e.hasSeconds)
        XCTAssertTrue(e.matches(wall: utc(2025, 1, 6, 9, 45)))  // a Monday
        XCTAssertFalse(e.matches(wall: utc(2025, 1, 5, 9, 45)))  // Sunday
        XCTAssertFalse(e.matches(wall: utc(2025, 2, 3, 9, 45)))
        XCTAssertFalse(e.matches(wall: utc(2025, 1, 6, 18, 0)))
        XCTAssertEqual(try CronExpression("@hourly").nextWall(after: utc(2025, 1, 1, 0, 0)), utc(2025, 1, 1, 1, 0))
        XCTAssertEqual(try CronExpression("0 0 * * 7").nextWall(after: utc(2025, 1, 1, 0, 0)), utc(2025, 1, 5, 0, 0), "7 is Sunday")
        XCTAssertEqual(try CronExpression("*/2 * * * * *").nextWall(after: utc(2025, 1, 1, 0, 0, 1)), utc(2025, 1, 1, 0, 0, 2))
        // Both day fields restricted: either matches (Vixie cron).
        XCTAssertEqual(try CronExpression("0 0 13 * 5").nextWall(after: utc(2025, 1, 1, 0, 0)), utc(2025, 1, 3, 0, 0))
        XCTAssertEqual(try CronExpression("0 0 29 2 *").nextWall(after: utc(2025, 1, 1, 0, 0)), utc(2028, 2, 29, 0, 0))
        XCTAssertNil(try CronExpression("0 0 30 2 *").nextWall(after: 0))
        for bad in [
            "", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "5-1 * * * *", "*/0 * * * *", "@reboot", "a * * * *",
            "1,,2 * * * *", "L * * * *",
        ] {
            XCTAssertThrowsError(try CronExpression(bad), "'\(bad)' must be refused")
        }
    }

    /// Random expressions in UTC against a scan of every minute (or second), matched with gmtime_r.
    func testNextAgreesWithBruteForceScan() throws {
        var rng = SystemRandomNumberGenerator()
        func field(_ range: ClosedRange<Int>) -> String {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: return "*"
            case 1: return "*/\(Int.random(in: 1...(range.upperBound / 2 + 1), using: &rng))"
            case 2: return "\(Int.random(in: range, using: &rng))"
            case 3:
                let a = Int.random(in: range, using: &rng)
                return "\(a)-\(Int.random(in: a...range.upperBound, using: &rng))"
            case 4: return (0..<3).map { _ in "\(Int.random(in: range, using: &rng))" }.joined(separator: ",")
            default:
                let a = Int.random(in: range, using: &rng)
                return "\(a)/\(Int.random(in: 1...5, using: &rng))"
            }
        }
        for round in 0..<300 {
            let seconds = round % 5 == 0
            let fields = [field(0...59), field(0...23), field(1...31), field(1...12), field(0...6)]
            let text = (seconds ? [field(0...59)] : []) + fields
            let expression = try CronExpression(text.joined(separator: " "))
            let start = Int.random(in: 0...2_000_000_000, using: &rng)
            let step = seconds ? 1 : 60
            let horizon = seconds ? 3 * 86400 : 400 * 86400
            // Each field as a set, read by code of its own (not the parser's).
            func values(_ f: String, _ low: Int, _ high: Int) -> Set<Int> {
                var out: Set<Int> = []
                for item in f.split(separator: ",") {
                    let p = item.split(separator: "/")
                    let step = p.count == 2 ? Int(p[1])! : 1
                    var (a, b) = (low, high)
                    if p[0] != "*" {
                        let r = p[0].split(separator: "-").map { Int($0)! }
                        a = r[0]
                        b = r.count == 2 ? r[1] : (p.count == 2 ? high : r[0])
                    }
                    for v in stride(from: a, through: b, by: step) { out.insert(v) }
                }
                return out
            }
            let secs = seconds ? values(text[0], 0, 59) : [0]
            let (mins, hrs, doms, mons, dows) = (
                values(fields[0], 0, 59), values(fields[1], 0, 23), values(fields[2], 1, 31), values(fields[3], 1, 12), values(fields[4], 0, 7)
            )
            var t = (start / step + 1) * step
            var expected: Int?
            while t <= start + horizon {
                var time = time_t(t)
                var parts = tm()
                gmtime_r(&time, &parts)
                let (dom, dow) = (Int(parts.tm_mday), Int(parts.tm_wday))
                // Day of week runs 0…7 as in Vixie cron: `4/3` is Thursday and Sunday (7).
                let dowOK = dows.contains(dow) || (dow == 0 && dows.contains(7))
                let dayOK: Bool
                switch (!fields[2].hasPrefix("*"), !fields[4].hasPrefix("*")) {
                case (true, true): dayOK = doms.contains(dom) || dowOK
                case (true, false): dayOK = doms.contains(dom)
                case (false, true): dayOK = dowOK
                default: dayOK = true
                }
                if !dayOK || !mons.contains(Int(parts.tm_mon) + 1) {
                    t = (t / 86400 + 1) * 86400  // nothing this day can match
                    continue
                }
                if secs.contains(Int(parts.tm_sec)) && mins.contains(Int(parts.tm_min)) && hrs.contains(Int(parts.tm_hour)) {
                    expected = t
                    break
                }
                t += step
            }
            let got = CronSchedule(expression: expression).next(after: start)
            if let expected {
                XCTAssertEqual(got, expected, "\(expression) after \(start)")
            } else if let got {
                XCTAssertGreaterThan(got, start + horizon, "\(expression) after \(start)")
            }
        }
    }

    /// The TZif reader's offsets against libc's localtime_r for the same zone (TZ is process-wide: set and restored here only).
    func testZoneOffsetsAgreeWithLibc() throws {
        let saved = getenv("TZ").map { String(cString: $0) }
        defer {
            if let saved { setenv("TZ", saved, 1) } else { unsetenv("TZ") }
            tzset()
        }
        var rng = SystemRandomNumberGenerator()
        for name in ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo"] {
            let rules = try zone(name)
            setenv("TZ", name, 1)
            tzset()
            for _ in 0..<2000 {
                let t = Int.random(in: 0...2_100_000_000, using: &rng)
                var time = time_t(t)
                var parts = tm()
                localtime_r(&time, &parts)
                XCTAssertEqual(rules.offset(at: t), Int(parts.tm_gmtoff), "\(name) at \(t)")
            }
        }
    }

    func testDaylightSavingSkippedAndRepeatedHours() throws {
        let berlin = try zone("Europe/Berlin")
        // 2025-03-30: 02:00 CET becomes 03:00 CEST at 01:00Z. 02:30 does not exist: it fires at the change.
        let daily = CronSchedule(expression: try CronExpression("30 2 * * *"), zone: berlin)
        XCTAssertEqual(daily.next(after: utc(2025, 3, 29, 12, 0)), utc(2025, 3, 30, 1, 0))
        XCTAssertEqual(daily.next(after: utc(2025, 3, 30, 1, 0)), utc(2025, 3, 31, 0, 30))
        let quarter = CronSchedule(expression: try CronExpression("*/15 * * * *"), zone: berlin)
        XCTAssertEqual(
            quarter.fireTimes(after: utc(2025, 3, 30, 0, 30), through: utc(2025, 3, 30, 1, 30)),
            [utc(2025, 3, 30, 0, 45), utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 1, 15), utc(2025, 3, 30, 1, 30)])
        // 2025-10-26: 03:00 CEST becomes 02:00 CET at 01:00Z. 02:30 happens twice: a daily job fires at the first only.
        XCTAssertEqual(
            daily.fireTimes(after: utc(2025, 10, 25, 12, 0), through: utc(2025, 10, 27, 12, 0)), [utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)])
        // An every-hour job keeps its pace through the repeated hour.
        let half = CronSchedule(expression: try CronExpression("*/30 * * * *"), zone: berlin)
        XCTAssertEqual(
            half.fireTimes(after: utc(2025, 10, 25, 23, 45), through: utc(2025, 10, 26, 2, 0)),
            [utc(2025, 10, 26, 0, 0), utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 1, 0), utc(2025, 10, 26, 1, 30), utc(2025, 10, 26, 2, 0)])
        // A zone ahead of UTC: 09:00 in Kolkata is 03:30Z.
        let kolkata = CronSchedule(expression: try CronExpression("0 9 * * *"), zone: try zone("Asia/Kolkata"))
        XCTAssertEqual(kolkata.next(after: utc(2025, 6, 1, 0, 0)), utc(2025, 6, 1, 3, 30))
    }

    /// In zones with DST, fire times always increase, and every fire time's local wall time matches (or is a gap's end).
    func testZoneFireTimesAreMonotonicAndMatch() throws {
        var rng = SystemRandomNumberGenerator()
        for name in ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"] {
            let rules = try zone(name)
            for text in ["*/7 * * * *", "30 1,2,3 * * *", "0 2 * * 0", "15 */2 * * *"] {
                let schedule = CronSchedule(expression: try CronExpression(text), zone: rules)
                var t = Int.random(in: 1_600_000_000...1_900_000_000, using: &rng)
                for _ in 0..<400 {
                    guard let n = schedule.next(after: t) else { return XCTFail("\(text) in \(name) stopped") }
                    XCTAssertGreaterThan(n, t)
                    let isGapEnd = rules.offset(at: n - 1) < rules.offset(at: n)
                    XCTAssertTrue(schedule.expression.matches(wall: n + rules.offset(at: n)) || isGapEnd, "\(text) in \(name) at \(n)")
                    t = n
                }
            }
        }
    }

    func testPlanEnqueuesWithinTheGraceWindowAndSkipsOlderTicks() throws {
        let job = PeriodicJob(name: "r", schedule: CronSchedule(expression: try CronExpression("* * * * *")), jobClass: "R", grace: 150)
        let now = utc(2025, 5, 1, 12, 0, 30)
        // A job never enqueued before starts now: no backfill.
        XCTAssertEqual(PeriodicPlan.plan(job, now: now, since: nil), PeriodicPlan(due: [], skipped: 0))
        XCTAssertEqual(PeriodicPlan.plan(job, now: utc(2025, 5, 1, 12, 1), since: nil).due, [utc(2025, 5, 1, 12, 1)])
        // A new leader after a recent one: the ticks within the grace window (now - 150 s, now].
        XCTAssertEqual(PeriodicPlan.plan(job, now: now, since: utc(2025, 5, 1, 11, 30)).due, [utc(2025, 5, 1, 11, 59), utc(2025, 5, 1, 12, 0)])
        // A leader that handled 11:59 already.
        XCTAssertEqual(PeriodicPlan.plan(job, now: now, since: utc(2025, 5, 1, 11, 59)).due, [utc(2025, 5, 1, 12, 0)])
        // After an hour with no courier: the ticks within the window are enqueued, 11:01…11:58 skipped and counted.
        let plan = PeriodicPlan.plan(job, now: now, since: utc(2025, 5, 1, 11, 0))
        XCTAssertEqual(plan.due.count, 2)
        XCTAssertEqual(plan.skipped, 58)
    }

    func testPayloadIsSidekiqClientShaped() throws {
        let job = PeriodicJob(
            name: "r", schedule: CronSchedule(expression: try CronExpression("@daily")), jobClass: "ReportJob", queue: "low", argsJSON: #"[1,"a"]"#,
            retryJSON: "3")
        let jid = PeriodicJob.newJID()
        XCTAssertTrue(jid.count == 24 && jid.allSatisfy(\.isHexDigit) && jid == jid.lowercased())
        let text = String(decoding: job.payload(jid: jid, now: 1_750_000_000.25), as: UTF8.self)
        XCTAssertEqual(
            text,
            #"{"retry":3,"queue":"low","args":[1,"a"],"class":"ReportJob","jid":"\#(jid)","created_at":1750000000.25,"enqueued_at":1750000000.25}"#)
        XCTAssertNoThrow(try JobPayload(raw: Array(text.utf8)).validate())
    }

    func testConfigSectionReadsEntriesAndNamesBadOnes() throws {
        let text = """
            :concurrency: 5
            :periodic_lease: 7
            :periodic:
              report:
                cron: "*/5 * * * *"
                class: ReportJob
                queue: reports
                args:
                  - 1
                  - "two"
                  - :three
                  - {a: 1.5}
                  - null
                  - yes
                tz: Europe/Berlin
                retry: 2
              cleanup:
                cron: "0 4 * * * America/New_York"
                class: "CleanupJob"
                args: {days: 30}
                grace: 600
            """
        let file = try SidekiqConfigFile(path: "s.yml", text: text, environment: [:])
        XCTAssertEqual(file.periodicLease, 7)
        XCTAssertEqual(file.periodic.map(\.name), ["report", "cleanup"])
        let report = file.periodic[0]
        XCTAssertEqual(report.argsJSON, #"[1,"two","three",{"a":1.5},null,true]"#)
        XCTAssertEqual(report.queue, "reports")
        XCTAssertEqual(report.retryJSON, "2")
        XCTAssertEqual(report.schedule.zone.name, "Europe/Berlin")
        XCTAssertEqual(file.periodic[1].argsJSON, #"[{"days":30}]"#)
        XCTAssertEqual(file.periodic[1].schedule.zone.name, "America/New_York")
        XCTAssertEqual(file.periodic[1].grace, 600)
        XCTAssertEqual(file.periodic[1].queue, "default")
        let bad: [(String, String)] = [
            ("r: {cron: '61 * * * *', class: R}", "'r': cron: minute '61'"),
            ("r: {cron: '* * * * *'}", "'r': class: is required"),
            ("r: {cron: '* * * * *', class: R, tz: Mars/Base}", "'r': tz: unknown time zone 'Mars/Base'"),
            ("r: {cron: '* * * * *', class: R, quue: x}", "'r': unknown key 'quue'"),
            ("r: {cron: '0 0 30 2 *', class: R}", "never fires"),
            ("r: {cron: '* * * * *', class: R, retry: maybe}", "'r': retry:"),
        ]
        for (entry, message) in bad {
            XCTAssertThrowsError(try SidekiqConfigFile(path: "s.yml", text: ":periodic:\n  " + entry, environment: [:])) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error) should contain \(message)")
            }
        }
    }
}
