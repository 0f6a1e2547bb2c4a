// Cron expressions as a value: the parser (5 fields, or 6 with seconds first
// as fugit/sidekiq-cron accept, names, ranges, steps, lists, @hourly …) and
// "the next matching wall-clock second", with no time zone and no I/O.
// CronSchedule (beside this file) puts a zone around it.

/// A parsed cron expression: `minute hour day-of-month month day-of-week`, or
/// `second minute hour day-of-month month day-of-week`.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    /// The expression as written (macros kept, e.g. `@hourly`).
    public let source: String
    let seconds: UInt64
    let minutes: UInt64
    let hours: UInt64
    let days: UInt64
    let months: UInt64
    let weekdays: UInt64
    /// Vixie cron's rule: when both day fields are restricted (not `*`), a day matches if either does.
    let daysRestricted: Bool
    let weekdaysRestricted: Bool
    /// True for the 6-field form (a seconds field first).
    public let hasSeconds: Bool

    public var description: String { source }

    /// True when every hour matches: such a job also fires in the hour a DST change repeats (see CronSchedule).
    public var everyHour: Bool { hours == (1 << 24) - 1 }

    private static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    /// Parses `text`; the error says which field is wrong and why.
    public init(_ text: String) throws(CronError) {
        source = text
        let trimmed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        let expanded = Self.macros[trimmed.lowercased()] ?? trimmed
        if expanded.hasPrefix("@") { throw CronError("'\(text)': unknown macro (use @yearly, @monthly, @weekly, @daily, @hourly)") }
        var fields = expanded.split(separator: " ").map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw CronError("'\(text)': expected 5 fields (minute hour day month weekday) or 6 (with seconds first), got \(fields.count)")
        }
        hasSeconds = fields.count == 6
        if !hasSeconds { fields.insert("0", at: 0) }
        seconds = try Self.field(fields[0], "second", 0...59, names: [])
        minutes = try Self.field(fields[1], "minute", 0...59, names: [])
        hours = try Self.field(fields[2], "hour", 0...23, names: [])
        days = try Self.field(fields[3], "day of month", 1...31, names: [])
        months = try Self.field(fields[4], "month", 1...12, names: Self.monthNames, nameBase: 1)
        var dow = try Self.field(fields[5], "day of week", 0...7, names: Self.dayNames)
        if dow & (1 << 7) != 0 { dow = (dow | 1) & ~(1 << 7) }  // 7 is Sunday too
        weekdays = dow
        daysRestricted = !(fields[3].hasPrefix("*") || fields[3].hasPrefix("?"))
        weekdaysRestricted = !(fields[5].hasPrefix("*") || fields[5].hasPrefix("?"))
    }

    /// One field: a comma list of `*`, `N`, `N-M`, each with an optional `/STEP` (`N/STEP` runs to the field's end).
    private static func field(
        _ text: String, _ name: String, _ range: ClosedRange<Int>, names: [String], nameBase: Int = 0
    ) throws(CronError) -> UInt64 {
        func value(_ s: Substring) throws(CronError) -> Int {
            if let n = Int(s), range.contains(n) { return n }
            if let i = names.firstIndex(of: s.lowercased()) { return i + nameBase }
            throw CronError("\(name) '\(s)' is not \(names.isEmpty ? "" : "a name or ")a number in \(range.lowerBound)…\(range.upperBound)")
        }
        var bits: UInt64 = 0
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else { throw CronError("\(name) '\(text)': '\(item)' is not a value, range or step") }
            var step = 1
            if parts.count == 2 {
                guard let n = Int(parts[1]), n >= 1, n <= range.upperBound + 1 else {
                    throw CronError("\(name) '\(text)': step '\(parts[1])' must be 1…\(range.upperBound + 1)")
                }
                step = n
            }
            var (low, high) = (range.lowerBound, range.upperBound)
            if parts[0] == "*" || parts[0] == "?" {
            } else if let dash = parts[0].firstIndex(of: "-") {
                low = try value(parts[0][..<dash])
                high = try value(parts[0][parts[0].index(after: dash)...])
                guard low <= high else { throw CronError("\(name) '\(text)': range '\(parts[0])' runs backwards") }
            } else {
                low = try value(parts[0])
                if parts.count == 1 { high = low }
            }
            for v in stride(from: low, through: high, by: step) { bits |= 1 << UInt64(v) }
        }
        return bits
    }

    private func has(_ set: UInt64, _ v: Int) -> Bool { set & (1 << UInt64(v)) != 0 }

    func dayMatches(_ day: Int, weekday: Int) -> Bool {
        switch (daysRestricted, weekdaysRestricted) {
        case (true, true): return has(days, day) || has(weekdays, weekday)
        case (true, false): return has(days, day)
        case (false, true): return has(weekdays, weekday)
        case (false, false): return true
        }
    }

    /// Whether a wall-clock time (seconds since 1970-01-01T00:00 of the local calendar) matches.
    public func matches(wall: Int) -> Bool {
        let day = Civil.floorDiv(wall, 86400)
        let (sod, date) = (wall - day * 86400, Civil.date(fromDays: day))
        return has(months, date.month) && dayMatches(date.day, weekday: Civil.weekday(day)) && has(hours, sod / 3600)
            && has(minutes, sod % 3600 / 60) && has(seconds, sod % 60)
    }

    /// The first matching wall-clock second strictly after `wall`, or nil when none comes within ten years
    /// (e.g. `0 0 30 2 *`). Skips whole months, days, hours and minutes that cannot match.
    public func nextWall(after wall: Int) -> Int? {
        var t = wall + 1
        if !hasSeconds { t = Civil.floorDiv(t + 59, 60) * 60 }
        let lastYear = Civil.date(fromDays: Civil.floorDiv(t, 86400)).year + 10
        while true {
            let day = Civil.floorDiv(t, 86400)
            let sod = t - day * 86400
            let date = Civil.date(fromDays: day)
            if date.year > lastYear { return nil }
            if !has(months, date.month) {
                let (y, m) = date.month == 12 ? (date.year + 1, 1) : (date.year, date.month + 1)
                t = Civil.days(year: y, month: m, day: 1) * 86400
            } else if !dayMatches(date.day, weekday: Civil.weekday(day)) {
                t = (day + 1) * 86400
            } else if !has(hours, sod / 3600) {
                t = day * 86400 + (sod / 3600 + 1) * 3600
            } else if !has(minutes, sod % 3600 / 60) {
                t = day * 86400 + (sod / 60 + 1) * 60
            } else if !has(seconds, sod % 60) {
                t += 1
            } else {
                return t
            }
        }
    }
}

/// Why a cron expression was refused.
public struct CronError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01), after H. Hinnant's algorithms.
public enum Civil {
    static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// The day number of a date.
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// The date of a day number.
    public static func date(fromDays z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719468
        let era = floorDiv(z, 146097)
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
    public static func weekday(_ days: Int) -> Int { ((days % 7) + 11) % 7 }

    /// `YYYY-MM-DDTHH:MM:SS` of a wall-clock second, for logs and `courier status`.
    public static func iso(_ wall: Int) -> String {
        let day = floorDiv(wall, 86400)
        let (sod, d) = (wall - day * 86400, date(fromDays: day))
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(d.year)-\(two(d.month))-\(two(d.day))T\(two(sod / 3600)):\(two(sod % 3600 / 60)):\(two(sod % 60))"
    }
}
