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
