// A cron expression in a time zone: "the next fire time after t". The zone's
// offsets come from the system tz database (a TZif file, parsed here from its
// bytes, read by Config), so the decision stays a value without I/O and
// without Foundation or libc's process-wide TZ.

/// A time zone as the UTC offsets it had and will have: the transitions of its TZif file.
public struct ZoneRules: Sendable, Equatable {
    /// The zone's name (`Europe/Berlin`, `UTC`).
    public let name: String
    /// Transition instants (UTC epoch seconds), ascending; `offsets[i]` applies from `transitions[i]` on.
    let transitions: [Int]
    let offsets: [Int]
    /// The offset before the first transition.
    let initialOffset: Int

    /// UTC: no transitions, offset 0.
    public static let utc = ZoneRules(name: "UTC", transitions: [], offsets: [], initialOffset: 0)

    init(name: String, transitions: [Int], offsets: [Int], initialOffset: Int) {
        self.name = name
        self.transitions = transitions
        self.offsets = offsets
        self.initialOffset = initialOffset
    }

    /// A fixed offset (tests; `Etc/GMT+N`-like zones come from their files).
    public static func fixed(_ name: String, offset: Int) -> ZoneRules {
        ZoneRules(name: name, transitions: [], offsets: [], initialOffset: offset)
    }

    /// Parses a TZif file (RFC 8536, version 1 or the 64-bit data of version 2+). Transitions after the
    /// file's last one keep its last offset: Debian's files list them up to 2037.
    public init(name: String, tzif b: [UInt8]) throws(CronError) {
        func u32(_ at: Int) -> Int { Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3]) }
        func i32(_ at: Int) -> Int { Int(Int32(truncatingIfNeeded: u32(at))) }
        func i64(_ at: Int) -> Int { Int(Int64(bitPattern: UInt64(u32(at)) << 32 | UInt64(u32(at + 4)))) }
        let bad = CronError("time zone '\(name)': not a TZif file")
        guard b.count >= 44, b[0] == 0x54, b[1] == 0x5A, b[2] == 0x69, b[3] == 0x66 else { throw bad }
        var base = 0
        var wide = false
        func counts(_ at: Int) -> (isut: Int, isstd: Int, leap: Int, time: Int, type: Int, char: Int) {
            (u32(at + 20), u32(at + 24), u32(at + 28), u32(at + 32), u32(at + 36), u32(at + 40))
        }
        var c = counts(0)
        if b[4] >= 0x32 {
            // Skip the 32-bit block to the second header.
            base = 44 + c.time * 5 + c.type * 6 + c.char + c.leap * 8 + c.isstd + c.isut
            guard b.count >= base + 44 else { throw bad }
            c = counts(base)
            wide = true
        }
        let timeSize = wide ? 8 : 4
        let timesAt = base + 44
        let indexAt = timesAt + c.time * timeSize
        let typesAt = indexAt + c.time
        guard c.type >= 1, b.count >= typesAt + c.type * 6 else { throw bad }
        let typeOffsets = (0..<c.type).map { i32(typesAt + $0 * 6) }
        var transitions: [Int] = []
        var offsets: [Int] = []
        for i in 0..<c.time {
            let at = wide ? i64(timesAt + i * 8) : i32(timesAt + i * 4)
            let type = Int(b[indexAt + i])
            guard type < c.type else { throw bad }
            // Transitions that change only the abbreviation or isdst are not transitions of the offset.
            if (offsets.last ?? typeOffsets[0]) == typeOffsets[type] { continue }
            transitions.append(at)
            offsets.append(typeOffsets[type])
        }
        self.init(name: name, transitions: transitions, offsets: offsets, initialOffset: typeOffsets[0])
    }

    /// Index of the last transition at or before `utc`, or nil before the first.
    private func index(atOrBefore utc: Int) -> Int? {
        var (low, high) = (0, transitions.count)
        while low < high {
            let mid = (low + high) / 2
            if transitions[mid] <= utc { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? nil : low - 1
    }

    /// Seconds to add to UTC for the local time at `utc`.
    public func offset(at utc: Int) -> Int { index(atOrBefore: utc).map { offsets[$0] } ?? initialOffset }

    /// The first transition strictly after `utc`.
    func transition(after utc: Int) -> Int? {
        let next = index(atOrBefore: utc).map { $0 + 1 } ?? 0
        return next < transitions.count ? transitions[next] : nil
    }

    /// The transition that began the offset in force at `utc`, and the offset before it.
    func segmentStart(_ utc: Int) -> (start: Int, previousOffset: Int)? {
        guard let i = index(atOrBefore: utc) else { return nil }
        return (transitions[i], i == 0 ? initialOffset : offsets[i - 1])
    }
}

/// When a periodic job fires: a cron expression read in a zone's local time.
///
/// Daylight saving: a local time the clocks skip (spring forward) fires once, at
/// the instant of the change; a local time that happens twice (fall back) fires
/// at its first occurrence only, unless the expression matches every hour
/// (`*/5 * * * *`): those keep firing through the repeated hour, as Vixie cron does.
public struct CronSchedule: Sendable, Equatable {
    public let expression: CronExpression
    public let zone: ZoneRules

    public init(expression: CronExpression, zone: ZoneRules = .utc) {
        self.expression = expression
        self.zone = zone
    }

    /// The first fire time strictly after `utc` (epoch seconds), or nil when none comes within ten years.
    public func next(after utc: Int) -> Int? {
        var lower = utc
        var off = zone.offset(at: utc)
        var start = zone.segmentStart(utc)
        var end = zone.transition(after: utc)
        // Walk the zone's constant-offset segments; each step passes one transition.
        for _ in 0..<64 {
            var wallAfter = lower + off
            if let s = start, s.previousOffset > off, !expression.everyHour {
                // The repeated local hour after a fall-back already fired in the first pass.
                wallAfter = max(wallAfter, s.start + s.previousOffset - 1)
            }
            guard let wall = expression.nextWall(after: wallAfter) else { return nil }
            let candidate = wall - off
            guard let e = end, candidate >= e else { return candidate }
            let nextOff = zone.offset(at: e)
            // A local time the jump skips fires at the jump.
            if nextOff > off && wall < e + nextOff { return e }
            (start, off, lower, end) = ((e, off), nextOff, e - 1, zone.transition(after: e))
        }
        return nil
    }

    /// Fire times in `(after, through]`, oldest first, at most `limit`.
    public func fireTimes(after: Int, through: Int, limit: Int = 1000) -> [Int] {
        var out: [Int] = []
        var t = after
        while out.count < limit, let n = next(after: t), n <= through {
            out.append(n)
            t = n
        }
        return out
    }
}
