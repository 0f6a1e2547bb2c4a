// Psych 4's ScalarScanner rules (Ruby 3.1): what a plain YAML scalar reads
// as — null, a boolean, an integer, a float, a symbol or a string — rule for
// rule in Psych's order, so courier types sidekiq.yml's values as Sidekiq does.

/// What Psych 4's `ScalarScanner#tokenize` makes of a plain scalar, rule for rule in its order.
/// Dates and times count as strings: courier has no use for them.
enum PlainScalar: Equatable {
    case null, bool(Bool), int(Int), bigInt(Double), float(Double), symbol(String), string
    /// What Psych's patterns let through but Ruby's Integer()/Float() then refuse (`0x_`, `.e+5`): Psych raises.
    case invalid

    init(_ text: String) {
        let s = Array(text.unicodeScalars)
        guard let first = s.first else { self = .null; return }
        // %r{^[^\d.:-]?[[:alpha:]_\s!@#$%\^&*(){}<>|/\\~;=]+}, or any newline: a word, not a number.
        func wordy(_ c: Unicode.Scalar) -> Bool {
            c.properties.isAlphabetic || "_ \t\n\r\u{0B}\u{0C}!@#$%^&*(){}<>|/\\~;=".unicodeScalars.contains(c)
        }
        if s.contains("\n") || wordy(first) || (!"0123456789.:-".unicodeScalars.contains(first) && s.count > 1 && wordy(s[1])) {
            self = Self.word(s)
            return
        }
        switch text.lowercased() {
        case ".inf", "+.inf": self = .float(.infinity); return
        case "-.inf": self = .float(-.infinity); return
        case ".nan": self = .float(.nan); return
        default: break
        }
        if first == ":" && s.count > 1 { self = .symbol(Self.symbolName(s)); return }
        let b = Array(text.utf8)
        self = Self.sexagesimal(b) ?? Self.float(b) ?? Self.integer(b) ?? .string
    }

    /// Short words are null (`~`, `null`) or booleans in any case; Ruby's `^` and `$` match at every line.
    private static func word(_ s: [Unicode.Scalar]) -> PlainScalar {
        guard s.count <= 5 else { return .string }
        let lines = s.split(separator: "\n", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)).lowercased() }
        // /^[^ytonf~]/i: a line starting otherwise (an empty line starts with its "\n") makes it a string.
        let otherStart = lines.indices.contains { i in
            lines[i].unicodeScalars.first.map { !"ytonf~".unicodeScalars.contains($0) } ?? (i < lines.count - 1)
        }
        if otherStart { return .string }
        if s == ["~"] || lines.contains("null") { return .null }
        if lines.contains(where: { ["yes", "true", "on"].contains($0) }) { return .bool(true) }
        if lines.contains(where: { ["no", "false", "off"].contains($0) }) { return .bool(false) }
        return .string
    }

    /// `:name` is the Symbol `name`; `:"a b"` and `:'a b'` drop their quotes.
    private static func symbolName(_ s: [Unicode.Scalar]) -> String {
        var name = s.dropFirst()
        if let q = name.first, q == "\"" || q == "'", let close = name.lastIndex(of: q), close > name.startIndex {
            name = name[name.index(after: name.startIndex)..<close]
            if name.first == ":" { name = name.dropFirst() }
        }
        return String(String.UnicodeScalarView(name))
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    /// /^[-+]?[0-9][0-9_]*(:[0-5]?[0-9]){1,2}(\.[0-9_]*)?$/, summed with Psych's weights 60^|i-2|
    /// (so `1:30` is 5400, as Psych reads it, and `1:30:00` is 5400 too).
    private static func sexagesimal(_ b: [UInt8]) -> PlainScalar? {
        let parts = b.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let head = parts[0].first == UInt8(ascii: "-") || parts[0].first == UInt8(ascii: "+") ? parts[0].dropFirst() : parts[0]
        guard let h = head.first, isDigit(h), head.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "_") }) else { return nil }
        var fraction: ArraySlice<UInt8>?
        for (i, var part) in parts.enumerated().dropFirst() {
            if i == parts.count - 1, let dot = part.firstIndex(of: UInt8(ascii: ".")) {
                fraction = part[part.index(after: dot)...]
                guard fraction!.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "_") }) else { return nil }
                part = part[..<dot]
            }
            guard part.allSatisfy(isDigit), part.count == 1 || (part.count == 2 && part.first! <= UInt8(ascii: "5")) else { return nil }
        }
        var sum = 0, exact = true, approximate = 0.0
        for (i, part) in parts.enumerated() {
            let weight = [1, 60, 3600][abs(i - 2)]
            let number = rubyNumber(part, fraction: fraction != nil && i == parts.count - 1)
            approximate += (Double(number) ?? 0) * Double(weight)
            guard let n = Int(number) else { exact = false; continue }
            let (product, o1) = n.multipliedReportingOverflow(by: weight)
            let (total, o2) = sum.addingReportingOverflow(product)
            exact = exact && !o1 && !o2
            sum = total
        }
        if fraction != nil { return .float(approximate) }
        return exact ? .int(sum) : .bigInt(approximate)
    }

    /// Ruby's String#to_i / #to_f on a part: digits with single underscores between them, then stop.
    private static func rubyNumber(_ b: ArraySlice<UInt8>, fraction: Bool) -> String {
        var out: [UInt8] = []
        var rest = b[...]
        if let sign = rest.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") { out.append(sign); rest = rest.dropFirst() }
        func digits() {
            var previousDigit = false
            while let c = rest.first {
                if isDigit(c) {
                    out.append(c); previousDigit = true
                } else if c == UInt8(ascii: "_"), previousDigit, let n = rest.dropFirst().first, isDigit(n) {
                    previousDigit = false
                } else {
                    break
                }
                rest = rest.dropFirst()
            }
        }
        digits()
        if fraction, rest.first == UInt8(ascii: ".") {
            out.append(UInt8(ascii: "."))
            rest = rest.dropFirst()
            digits()
            out.append(UInt8(ascii: "0"))  // "30." reads as 30.0
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// FLOAT = /^[-+]?([0-9][0-9_,]*)?\.[0-9]*([eE][-+][0-9]+)?$/, then Ruby's Float() on it without `,` and `_`.
    private static func float(_ b: [UInt8]) -> PlainScalar? {
        var i = 0
        if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
        var mantissaDigits = 0
        if i < b.count, isDigit(b[i]) {
            while i < b.count, isDigit(b[i]) || b[i] == UInt8(ascii: "_") || b[i] == UInt8(ascii: ",") {
                if isDigit(b[i]) { mantissaDigits += 1 }; i += 1
            }
        }
        guard i < b.count, b[i] == UInt8(ascii: ".") else { return nil }
        i += 1
        while i < b.count, isDigit(b[i]) { mantissaDigits += 1; i += 1 }
        let exponentStart = i
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            guard i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") else { return nil }
            i += 1
            guard i < b.count, isDigit(b[i]) else { return nil }
            while i < b.count, isDigit(b[i]) { i += 1 }
        }
        guard i == b.count else { return nil }
        if exponentStart == b.count && mantissaDigits == 0 { return .string }  // ".", "-.": Psych keeps these as text
        guard mantissaDigits > 0 else { return .invalid }  // ".e+5": Float("e+5") raises
        let cleaned = b.filter { $0 != UInt8(ascii: "_") && $0 != UInt8(ascii: ",") }
        return Double(String(decoding: cleaned, as: UTF8.self)).map { .float($0) } ?? .invalid
    }

    /// INTEGER: `[-+]?` then `0b[01_,]+`, `0x[0-9a-fA-F_,]+`, `0[0-7_,]+` (octal), or decimal with single `,`/`_` separators.
    private static func integer(_ b: [UInt8]) -> PlainScalar? {
        var rest = b[...]
        let negative = rest.first == UInt8(ascii: "-")
        if negative || rest.first == UInt8(ascii: "+") { rest = rest.dropFirst() }
        let separators: Set<UInt8> = [UInt8(ascii: "_"), UInt8(ascii: ",")]
        let radix: Int
        var digits: [UInt8]
        if rest.starts(with: "0b".utf8) || rest.starts(with: "0x".utf8) {
            radix = rest.dropFirst().first == UInt8(ascii: "b") ? 2 : 16
            let body = rest.dropFirst(2)
            guard !body.isEmpty, body.allSatisfy({ separators.contains($0) || Self.digitValue($0, radix: radix) != nil }) else { return nil }
            digits = body.filter { !separators.contains($0) }
            if digits.isEmpty { return .invalid }  // "0x_": Integer("0x") raises
        } else if rest.first == UInt8(ascii: "0"), rest.count > 1 {
            radix = 8
            let body = rest.dropFirst()
            guard body.allSatisfy({ separators.contains($0) || Self.digitValue($0, radix: 8) != nil }) else { return nil }
            digits = [UInt8(ascii: "0")] + body.filter { !separators.contains($0) }
        } else {
            radix = 10
            guard let f = rest.first, isDigit(f) else { return nil }
            var previous = f
            for c in rest.dropFirst() {
                guard isDigit(c) || (separators.contains(c) && isDigit(previous)) else { return nil }
                previous = c
            }
            guard isDigit(previous) else { return nil }  // a separator must have a digit after it
            digits = rest.filter { !separators.contains($0) }
        }
        var magnitude: UInt64 = 0, overflow = false, approximate = 0.0
        for c in digits {
            let d = Self.digitValue(c, radix: radix)!
            approximate = approximate * Double(radix) + Double(d)
            let (m, o1) = magnitude.multipliedReportingOverflow(by: UInt64(radix))
            let (a, o2) = m.addingReportingOverflow(UInt64(d))
            overflow = overflow || o1 || o2
            magnitude = a
        }
        if !overflow, negative, magnitude <= UInt64(Int.max) + 1 { return .int(magnitude == UInt64(Int.max) + 1 ? Int.min : -Int(magnitude)) }
        if !overflow, !negative, magnitude <= UInt64(Int.max) { return .int(Int(magnitude)) }
        return .bigInt(negative ? -approximate : approximate)
    }

    private static func digitValue(_ c: UInt8, radix: Int) -> Int? {
        let v: Int
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = Int(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = Int(c - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): v = Int(c - UInt8(ascii: "A")) + 10
        default: return nil
        }
        return v < radix ? v : nil
    }
}
