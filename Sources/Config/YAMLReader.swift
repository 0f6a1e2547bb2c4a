// Reads the YAML of configuration files such as Sidekiq's `config/sidekiq.yml`
// into `YAMLNode`s, the way Ruby's Psych (what Sidekiq loads the file with)
// would load them.
//
// Why libyaml: Psych is built on it, so the same C parser decides what is
// valid YAML, how it splits into nodes and which line an error is on; it is a
// small Debian library (libyaml-dev) with a plain C API, so no Foundation is
// needed. On top of libyaml's event stream this file does what Psych's Ruby
// layer does: resolving aliases, `<<` merge keys, and typing plain scalars as
// Psych 4's ScalarScanner does (Ruby 3.1, the Psych the tests compare with).

import CYAML

/// One YAML value. Plain scalars keep their text; `int`, `double`, `bool` and
/// `rubyText` resolve it as Psych would (YAML 1.1 types, Ruby symbols).
public indirect enum YAMLNode: Equatable, Sendable {
    case null
    /// `quoted` is true for quoted and block (`|`, `>`) scalars and `!!str`/`!ruby/symbol` ones: never numbers.
    case scalar(String, quoted: Bool)
    case sequence([YAMLNode])
    /// Keys in file order (a later duplicate replaces the earlier value in place, as in a Ruby Hash).
    case mapping([(key: String, value: YAMLNode)])

    public static func == (a: YAMLNode, b: YAMLNode) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.scalar(x, qx), .scalar(y, qy)): return x == y && qx == qy
        case let (.sequence(x), .sequence(y)): return x == y
        case let (.mapping(x), .mapping(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// A scalar's text as written (quotes and escapes removed).
    public var text: String? {
        if case let .scalar(s, _) = self { return s }
        return nil
    }

    /// The Integer Psych reads a plain scalar as: `12`, `-7`, `1_000`, `1,000`, `0x1F`, `0b101`,
    /// `017` (octal), `1:30:00` (base 60). Nil for anything else, and beyond `Int`.
    public var int: Int? {
        guard case let .scalar(s, quoted: false) = self, case let .int(n) = PlainScalar(s) else { return nil }
        return n
    }

    /// The number Psych reads a plain scalar as, Integer or Float (`2.5`, `1.5e+3`, `.inf`, `.nan`).
    public var double: Double? {
        guard case let .scalar(s, quoted: false) = self else { return nil }
        switch PlainScalar(s) {
        case let .int(n): return Double(n)
        case let .bigInt(d), let .float(d): return d
        default: return nil
        }
    }

    /// The boolean Psych reads a plain scalar as: `true`/`yes`/`on`, `false`/`no`/`off`, in any letter case.
    public var bool: Bool? {
        guard case let .scalar(s, quoted: false) = self, case let .bool(b) = PlainScalar(s) else { return nil }
        return b
    }

    /// Text as Ruby sees it after `to_s`: a plain `:name` is a Symbol, whose text is `name`;
    /// `yes` is `"true"`, `0x1F` is `"31"`. (Floats keep their written text.)
    public var rubyText: String? {
        guard case let .scalar(s, quoted) = self else { return nil }
        if quoted { return s }
        switch PlainScalar(s) {
        case let .symbol(name): return name
        case let .bool(b): return b ? "true" : "false"
        case let .int(n): return String(n)
        default: return s
        }
    }

    /// The value as text for messages and string options (a scalar's text, else a YAML-ish rendering).
    public var display: String {
        switch self {
        case .null: return ""
        case let .scalar(s, _): return s
        case let .sequence(items): return "[" + items.map(\.display).joined(separator: ", ") + "]"
        case let .mapping(pairs): return "{" + pairs.map { "\($0.key): \($0.value.display)" }.joined(separator: ", ") + "}"
        }
    }
}

/// Why a text is not YAML courier can read, and on which line (1-based).
public struct YAMLError: Error, Sendable, CustomStringConvertible {
    public let line: Int
    public let message: String
    public var description: String { "line \(line): \(message)" }
}

public enum YAMLReader {
    /// Reads the first document, as Psych's `YAML.load` does (later documents are not looked at);
    /// nil when there is none or it is empty. Aliases are resolved by copying the anchored node.
    public static func read(_ text: String) throws(YAMLError) -> YAMLNode? {
        var text = text
        let result: Result<YAMLNode?, YAMLError> = text.withUTF8 { bytes in Result { () throws(YAMLError) in try parse(bytes) } }
        return try result.get()
    }

    /// Line breaks as libyaml counts them: LF, CR, CR LF, NEL, LS, PS.
    static func lineBreaks(in bytes: some Collection<UInt8>) -> Int {
        var count = 0
        var previous: (UInt8, UInt8) = (0, 0)
        for b in bytes {
            switch (previous, b) {
            case ((_, 0x0D), 0x0A): break  // the LF of CR LF: counted with the CR
            case (_, 0x0A), (_, 0x0D), ((_, 0xC2), 0x85), ((0xE2, 0x80), 0xA8), ((0xE2, 0x80), 0xA9): count += 1
            default: break
            }
            previous = (previous.1, b)
        }
        return count
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(YAMLError) -> YAMLNode? {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
        // libyaml's string reader keeps a pointer to the parser itself: it must not move, so it lives on the heap.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { throw YAMLError(line: 1, message: "libyaml could not allocate a parser") }
        defer { yaml_parser_delete(parser) }
        // UTF-8 set explicitly, as Psych does for a String: a byte-order mark is then skipped by the
        // scanner at the start of any line, counting as a column, exactly as under Psych.
        yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(parser, base, bytes.count)
        var reader = EventReader(parser: parser, bytes: bytes)
        return try reader.firstDocument()
    }
}

/// One libyaml event, copied out of C memory so the event can be freed at once.
private struct Event {
    enum Kind { case streamStart, streamEnd, documentStart, documentEnd, alias, scalar, sequenceStart, sequenceEnd, mappingStart, mappingEnd }
    var kind: Kind
    var line: Int
    var anchor: String?
    var tag: String?
    var value = ""
    /// libyaml's `quoted_implicit`: an untagged quoted or block scalar, which Psych never types.
    var quoted = false
}

/// Builds nodes from libyaml's events, with Psych's aliases, merges and scalar types.
private struct EventReader {
    /// Deeper documents are refused: building, comparing and freeing nodes recurses once per level.
    static let maxDepth = 128
    /// A cap on nodes copied through aliases, against "billion laughs" documents.
    static let maxAliasedNodes = 1_000_000

    struct Built {
        var node: YAMLNode
        var size = 1
        var height = 0
        /// Holds an alias of an anchor still being built: fine as a merge source, a cycle anywhere else.
        var isCycle = false
    }

    /// Psych registers a collection's anchor when the collection starts: an alias inside it gets the
    /// unfinished collection (`level` indexes `building` for a mapping's pairs so far).
    enum Anchor { case open(id: Int, level: Int?), done(Built) }

    let parser: UnsafeMutablePointer<yaml_parser_t>
    let bytes: UnsafeBufferPointer<UInt8>
    var anchors: [String: Anchor] = [:]
    /// The pairs of the mappings being built, outermost first.
    var building: [Pairs] = []
    var openCount = 0
    var aliasedNodes = 0

    init(parser: UnsafeMutablePointer<yaml_parser_t>, bytes: UnsafeBufferPointer<UInt8>) {
        self.parser = parser
        self.bytes = bytes
    }

    mutating func firstDocument() throws(YAMLError) -> YAMLNode? {
        _ = try next()  // STREAM-START
        guard try next().kind == .documentStart else { return nil }  // no document: only comments, or nothing
        let root = try next()
        let built = try node(root, depth: 0)
        if built.isCycle { throw YAMLError(line: root.line, message: "an alias inside its own anchor makes a recursive structure") }
        _ = try next()  // DOCUMENT-END, where Psych's load stops reading
        if root.kind == .scalar, root.value.isEmpty, root.tag == nil, !root.quoted { return nil }  // "---" alone
        return built.node
    }

    private mutating func next() throws(YAMLError) -> Event {
        var event = yaml_event_t()
        guard yaml_parser_parse(parser, &event) == 1 else { throw libyamlError() }
        defer { yaml_event_delete(&event) }
        let line = Int(event.start_mark.line) + 1
        func string(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? { p.map { String(cString: $0) } }
        switch event.type {
        case YAML_STREAM_START_EVENT: return Event(kind: .streamStart, line: line)
        case YAML_DOCUMENT_START_EVENT: return Event(kind: .documentStart, line: line)
        case YAML_DOCUMENT_END_EVENT: return Event(kind: .documentEnd, line: line)
        case YAML_ALIAS_EVENT: return Event(kind: .alias, line: line, anchor: string(event.data.alias.anchor))
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            // The length, not the C string: a "\0" escape puts a NUL inside the value.
            let value = String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
            return Event(kind: .scalar, line: line, anchor: string(s.anchor), tag: string(s.tag), value: value, quoted: s.quoted_implicit != 0)
        case YAML_SEQUENCE_START_EVENT:
            return Event(
                kind: .sequenceStart, line: line, anchor: string(event.data.sequence_start.anchor), tag: string(event.data.sequence_start.tag))
        case YAML_SEQUENCE_END_EVENT: return Event(kind: .sequenceEnd, line: line)
        case YAML_MAPPING_START_EVENT:
            return Event(kind: .mappingStart, line: line, anchor: string(event.data.mapping_start.anchor), tag: string(event.data.mapping_start.tag))
        case YAML_MAPPING_END_EVENT: return Event(kind: .mappingEnd, line: line)
        default: return Event(kind: .streamEnd, line: line)
        }
    }

    private func libyamlError() -> YAMLError {
        let p = parser.pointee
        let problem = p.problem.map { String(cString: $0) } ?? "invalid YAML"
        switch p.error {
        case YAML_MEMORY_ERROR:
            return YAMLError(line: 1, message: "libyaml ran out of memory")
        case YAML_READER_ERROR:
            // Reader errors (bad UTF-8, control characters) carry a byte offset, not a mark.
            let line = 1 + YAMLReader.lineBreaks(in: bytes.prefix(Int(p.problem_offset)))
            let value = p.problem_value == -1 ? "" : " (#x\(String(p.problem_value, radix: 16)))"
            return YAMLError(line: line, message: problem + value)
        default:
            var message = "\(problem) at column \(p.problem_mark.column + 1)"
            if let context = p.context { message += " (\(String(cString: context)) at line \(p.context_mark.line + 1))" }
            return YAMLError(line: Int(p.problem_mark.line) + 1, message: message)
        }
    }

    private mutating func node(_ event: Event, depth: Int) throws(YAMLError) -> Built {
        switch event.kind {
        case .alias:
            let name = event.anchor ?? ""
            switch anchors[name] {
            case let .done(built)?:
                aliasedNodes += built.size
                guard aliasedNodes <= Self.maxAliasedNodes else {
                    throw YAMLError(line: event.line, message: "aliases expand to more than \(Self.maxAliasedNodes) nodes")
                }
                guard depth + built.height <= Self.maxDepth else {
                    throw YAMLError(line: event.line, message: "alias '*\(name)' nests deeper than \(Self.maxDepth) levels")
                }
                return built
            case let .open(_, level)?:
                // `<<: *self` inside its own mapping merges the keys so far, as Ruby's merge! does.
                let partial = level.map { building[$0].list } ?? []
                aliasedNodes += partial.count
                return Built(node: level == nil ? .null : .mapping(partial), isCycle: true)
            case nil: throw YAMLError(line: event.line, message: "unknown alias '*\(name)'")
            }
        case .scalar:
            let built = Built(node: try scalar(event))
            if let name = event.anchor { anchors[name] = .done(built) }
            return built
        case .sequenceStart, .mappingStart:
            guard depth < Self.maxDepth else { throw YAMLError(line: event.line, message: "nests deeper than \(Self.maxDepth) levels") }
            openCount += 1
            let id = openCount
            if let name = event.anchor { anchors[name] = .open(id: id, level: event.kind == .mappingStart ? building.count : nil) }
            let built = if event.kind == .sequenceStart { try sequence(depth: depth) } else { try mapping(depth: depth) }
            // Only if no inner node took the anchor name over meanwhile (Psych keeps the latest).
            if let name = event.anchor, case .open(id, _)? = anchors[name] { anchors[name] = .done(built) }
            return built
        default:
            throw YAMLError(line: event.line, message: "unexpected YAML event")  // libyaml never sends one here
        }
    }

    private mutating func sequence(depth: Int) throws(YAMLError) -> Built {
        var items: [YAMLNode] = []
        var built = Built(node: .null)
        while true {
            let event = try next()
            if event.kind == .sequenceEnd { break }
            let item = try node(event, depth: depth + 1)
            items.append(item.node)
            built.size += item.size
            built.height = max(built.height, item.height + 1)
            built.isCycle = built.isCycle || item.isCycle  // a merge of this list may still consume it
        }
        built.node = .sequence(items)
        return built
    }

    private mutating func mapping(depth: Int) throws(YAMLError) -> Built {
        let level = building.count
        building.append(Pairs())
        defer { building.removeLast() }
        var built = Built(node: .null)
        while true {
            let keyEvent = try next()
            if keyEvent.kind == .mappingEnd { break }
            let key = try node(keyEvent, depth: depth + 1)
            let valueEvent = try next()
            let value = try node(valueEvent, depth: depth + 1)
            built.size += key.size + value.size
            built.height = max(built.height, key.height + 1, value.height + 1)
            // "<<" merges, as in Psych, unless the key is tagged !!str (or a symbol).
            let isMerge = key.node.text == "<<" && keyEvent.tag != "tag:yaml.org,2002:str" && !(keyEvent.tag?.hasPrefix("!ruby/sym") ?? false)
            if !(isMerge && building[level].merge(value.node, written: valueEvent.kind)) {
                guard !key.isCycle && !value.isCycle else {
                    throw YAMLError(line: valueEvent.line, message: "an alias inside its own anchor makes a recursive structure")
                }
                building[level].set(key.node.display, value.node)
            }
        }
        built.node = .mapping(building[level].list)
        return built
    }

    /// A scalar as Psych's `deserialize` sees it: quoted ones and `!!str`/`!ruby/symbol` ones are text
    /// (and `!binary`, left base64-encoded); the rest, plain or with any other tag, are typed by `tokenize`.
    private func scalar(_ event: Event) throws(YAMLError) -> YAMLNode {
        if event.quoted { return .scalar(event.value, quoted: true) }
        if let tag = event.tag,
            tag == "tag:yaml.org,2002:str" || tag == "!str" || tag.hasPrefix("!str:") || tag == "!ruby/string"
                || tag.hasPrefix("!ruby/string:") || tag.hasPrefix("!ruby/sym") || tag == "!binary" || tag == "tag:yaml.org,2002:binary"
        {
            return .scalar(event.value, quoted: true)
        }
        switch PlainScalar(event.value) {
        case .null: return .null
        case .invalid: throw YAMLError(line: event.line, message: "'\(event.value)' looks like a number but is not one (Psych refuses it)")
        default: return .scalar(event.value, quoted: false)
        }
    }
}

/// Mapping pairs in order, with an index so duplicates stay linear. Keys are told apart by their
/// bytes, as Ruby's Hash does (Swift's String == would make "é" and "e\u{301}" one key).
private struct Pairs {
    var list: [(key: String, value: YAMLNode)] = []
    var index: [[UInt8]: Int] = [:]

    mutating func set(_ key: String, _ value: YAMLNode) {
        let bytes = Array(key.utf8)
        if let i = index[bytes] { list[i].value = value } else { index[bytes] = list.count; list.append((key, value)) }
    }

    /// Psych's revive_hash for "<<": a mapping (or an alias of one) is merged over the keys so far;
    /// a written list of mappings is merged with the earlier ones winning. False for anything
    /// else (Ruby's merge! raises TypeError), which Psych then keeps as a plain "<<" key.
    mutating func merge(_ value: YAMLNode, written kind: Event.Kind) -> Bool {
        switch value {
        case let .mapping(merged) where kind != .sequenceStart:
            for pair in merged { set(pair.key, pair.value) }
        case let .sequence(list) where kind == .sequenceStart:
            var combined = Pairs()
            for item in list.reversed() {
                guard case let .mapping(map) = item else { return false }
                for pair in map { combined.set(pair.key, pair.value) }
            }
            for pair in combined.list { set(pair.key, pair.value) }
        default:
            return false
        }
        return true
    }
}

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
