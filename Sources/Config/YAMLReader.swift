// A reader for the YAML that configuration files like `config/sidekiq.yml`
// are written in: block mappings and sequences, flow `[...]` and `{...}`,
// plain, single- and double-quoted scalars, comments, `---`, anchors, aliases
// and `<<` merges, `|`/`>` block scalars, and tags (ignored). Not a general
// YAML 1.2 parser (no multi-document streams, no complex keys); anything it
// cannot read is an error naming the line, never a guess.

/// One YAML value. Plain scalars keep their text; `int`/`double`/`bool`
/// resolve it as YAML 1.1 core types would.
public indirect enum YAMLNode: Equatable, Sendable {
    case null
    case scalar(String, quoted: Bool)
    case sequence([YAMLNode])
    /// Keys in file order (a later duplicate replaces the earlier value).
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

    public var text: String? {
        if case let .scalar(s, _) = self { return s }
        return nil
    }

    public var int: Int? {
        guard case let .scalar(s, quoted) = self, !quoted else { return nil }
        return Int(s.replacingUnderscores)
    }

    public var double: Double? {
        guard case let .scalar(s, quoted) = self, !quoted else { return nil }
        return Double(s.replacingUnderscores)
    }

    /// Text as Ruby sees it after `to_s`: a plain `:name` is a Symbol, whose text is `name`.
    public var rubyText: String? {
        guard case let .scalar(s, quoted) = self else { return nil }
        return !quoted && s.hasPrefix(":") && s.count > 1 ? String(s.dropFirst()) : s
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

public struct YAMLError: Error, Sendable, CustomStringConvertible {
    public let line: Int
    public let message: String
    public var description: String { "line \(line): \(message)" }
}

public enum YAMLReader {
    /// Reads one document; nil when it is empty.
    public static func read(_ text: String) throws(YAMLError) -> YAMLNode? {
        // An editor's byte-order mark is not part of the first key.
        let text = text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
        var parser = Parser(lines: Line.split(text))
        return try parser.document()
    }
}

/// One meaningful source line: its indentation and its content without the comment.
private struct Line {
    let number: Int
    let indent: Int
    let content: Substring

    static func split(_ text: String) -> [Line] {
        var lines: [Line] = []
        var number = 0
        // Split on the byte: to Swift, "\r\n" is one Character, not a "\n".
        for raw in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            var line = Substring(raw)
            if line.utf8.last == UInt8(ascii: "\r") { line = Substring(line.utf8.dropLast()) }
            let indent = line.prefix { $0 == " " }.count
            let content = stripComment(line.dropFirst(indent))
            lines.append(Line(number: number, indent: indent, content: content))
        }
        return lines
    }

    var isBlank: Bool { content.allSatisfy { $0 == " " || $0 == "\t" } }

    /// Drops a `#` comment that starts the line or follows a space, outside quotes.
    private static func stripComment(_ s: Substring) -> Substring {
        var quote: Character?
        var previous: Character = " "
        var index = s.startIndex
        while index < s.endIndex {
            let c = s[index]
            if let q = quote {
                if c == q { quote = nil }
                if c == "\\" && q == "\"" { index = s.index(after: index); if index == s.endIndex { break } }
            } else if c == "'" || c == "\"", previous == " " || previous == "[" || previous == "{" || previous == "," || previous == ":" || index == s.startIndex {
                quote = c
            } else if c == "#" && (previous == " " || previous == "\t") {
                return trimTrailing(s[..<index])
            } else if c == "#" && index == s.startIndex {
                return s[s.startIndex..<s.startIndex]
            }
            previous = c
            index = s.index(after: index)
        }
        return trimTrailing(s)
    }

    static func trimTrailing(_ s: Substring) -> Substring {
        var end = s.endIndex
        while end > s.startIndex, s[s.index(before: end)] == " " || s[s.index(before: end)] == "\t" { end = s.index(before: end) }
        return s[s.startIndex..<end]
    }
}

private struct Parser {
    var lines: [Line]
    var position = 0
    var anchors: [String: YAMLNode] = [:]

    init(lines: [Line]) { self.lines = lines }

    mutating func document() throws(YAMLError) -> YAMLNode? {
        skipBlank()
        while position < lines.count, lines[position].indent == 0, lines[position].content.hasPrefix("%") { position += 1; skipBlank() }
        // Tabs cannot indent YAML; Psych refuses them, and so does this reader (never a silent misreading).
        if let tabbed = lines.first(where: { !$0.isBlank && $0.content.first == "\t" }) {
            throw YAMLError(line: tabbed.number, message: "tabs cannot indent YAML")
        }
        if position < lines.count, lines[position].indent == 0, lines[position].content == "---" || lines[position].content.hasPrefix("--- ") {
            var rest = Self.dropTag(lines[position].content.dropFirst(3).drop { $0 == " " })
            if Self.isAnchorOnly(rest) { rest = rest.dropFirst(rest.count) }  // "--- &name": the block below is the document
            position += 1
            if !rest.isEmpty { return try inline(rest, line: lines[position - 1].number) }
            skipBlank()
        }
        guard position < lines.count else { return nil }
        let node = try block(indent: lines[position].indent)
        skipBlank()
        if position < lines.count && !(lines[position].indent == 0 && (lines[position].content == "..." || lines[position].content == "---")) {
            throw error("unexpected indentation or content")
        }
        return node
    }

    // MARK: blocks

    private mutating func skipBlank() {
        while position < lines.count && lines[position].isBlank { position += 1 }
    }

    private func error(_ message: String) -> YAMLError {
        YAMLError(line: position < lines.count ? lines[position].number : (lines.last?.number ?? 0), message: message)
    }

    /// The block (mapping or sequence) whose lines start at `indent`.
    private mutating func block(indent: Int) throws(YAMLError) -> YAMLNode {
        skipBlank()
        guard position < lines.count else { return .null }
        let line = lines[position]
        if line.content == "-" || line.content.hasPrefix("- ") { return try sequence(indent: indent) }
        if Self.splitKey(line.content) != nil { return try mapping(indent: indent) }
        // A lone scalar (possibly continued on more-indented lines).
        position += 1
        return try inline(line.content, line: line.number)
    }

    private mutating func sequence(indent: Int) throws(YAMLError) -> YAMLNode {
        var items: [YAMLNode] = []
        while true {
            skipBlank()
            guard position < lines.count else { break }
            let line = lines[position]
            guard line.indent == indent, line.content == "-" || line.content.hasPrefix("- ") else {
                if line.indent > indent { throw error("unexpected indentation in a list") }
                break
            }
            let rest = line.content.dropFirst(1).drop { $0 == " " }
            let restColumn = indent + (line.content.count - rest.count)
            position += 1
            if rest.isEmpty {
                items.append(try nested(deeperThan: indent))
            } else if rest.hasPrefix("- ") || rest == "-" || Self.splitKey(rest) != nil {
                // "- key: value" (or "- - x"): a block whose first line shares the dash's line,
                // read as if that line started at the column after the dash.
                position -= 1
                lines[position] = Line(number: line.number, indent: restColumn, content: rest)
                items.append(try block(indent: restColumn))
            } else {
                items.append(try value(rest, line: line.number, parentIndent: indent))
            }
        }
        return .sequence(items)
    }

    private mutating func mapping(indent: Int) throws(YAMLError) -> YAMLNode {
        var pairs: [(key: String, value: YAMLNode)] = []
        func set(_ key: String, _ value: YAMLNode) {
            if let i = pairs.firstIndex(where: { $0.key == key }) { pairs[i].value = value } else { pairs.append((key, value)) }
        }
        while true {
            skipBlank()
            guard position < lines.count else { break }
            let line = lines[position]
            if line.indent < indent { break }
            if line.indent > indent { throw error("unexpected indentation") }
            if line.content == "-" || line.content.hasPrefix("- ") { break }  // the parent's list continues
            guard let (rawKey, rest) = Self.splitKey(line.content) else { throw error("expected 'key: value'") }
            let key = try Self.keyText(rawKey, line: line.number)
            position += 1
            let node: YAMLNode
            if rest.isEmpty || Self.isAnchorOnly(rest) {
                if let anchor = Self.anchorName(rest) {
                    node = try nestedOrSameIndentList(indent: indent)
                    anchors[anchor] = node
                } else {
                    node = try nestedOrSameIndentList(indent: indent)
                }
            } else {
                node = try value(rest, line: line.number, parentIndent: indent)
            }
            if key == "<<" {
                // Merge: keys from the referenced mapping(s) that this mapping does not set itself.
                let sources: [YAMLNode]
                if case let .sequence(list) = node { sources = list } else { sources = [node] }
                for source in sources {
                    guard case let .mapping(merged) = source else { throw YAMLError(line: line.number, message: "'<<' needs a mapping") }
                    for pair in merged where !pairs.contains(where: { $0.key == pair.key }) { pairs.append(pair) }
                }
            } else {
                set(key, node)
            }
        }
        return .mapping(pairs)
    }

    /// A key's value on the following lines: more indented, or a list at the key's own indent.
    private mutating func nestedOrSameIndentList(indent: Int) throws(YAMLError) -> YAMLNode {
        skipBlank()
        if position < lines.count, lines[position].indent == indent, lines[position].content == "-" || lines[position].content.hasPrefix("- ") {
            return try sequence(indent: indent)
        }
        return try nested(deeperThan: indent)
    }

    private mutating func nested(deeperThan indent: Int) throws(YAMLError) -> YAMLNode {
        skipBlank()
        guard position < lines.count, lines[position].indent > indent else { return .null }
        return try block(indent: lines[position].indent)
    }

    // MARK: values on one line

    /// A value after "key:" or "- ": inline, a block scalar, or a multi-line flow collection.
    private mutating func value(_ text: Substring, line: Int, parentIndent: Int) throws(YAMLError) -> YAMLNode {
        var text = Self.dropTag(text)
        var anchor: String?
        if let name = Self.anchorName(text) {
            anchor = name
            text = Self.dropTag(text.drop { $0 != " " }.drop { $0 == " " })
        }
        let node: YAMLNode
        if text.hasPrefix("|") || text.hasPrefix(">") {
            node = blockScalar(folded: text.hasPrefix(">"), keep: text.contains("+"), strip: text.contains("-"), parentIndent: parentIndent)
        } else if text.first == "[" || text.first == "{" {
            var joined = String(text)
            while !Self.flowIsClosed(joined) && position < lines.count {
                joined += " " + lines[position].content
                position += 1
            }
            node = try inline(Substring(joined), line: line)
        } else if text.first == "\"" || text.first == "'" {
            var joined = String(text)
            while !Self.quoteIsClosed(joined) && position < lines.count {
                joined += " " + lines[position].content.drop { $0 == " " }
                position += 1
            }
            node = try inline(Substring(joined), line: line)
        } else {
            // A plain scalar may continue on more-indented lines (folded with spaces).
            var joined = String(text)
            while position < lines.count, !lines[position].isBlank, lines[position].indent > parentIndent,
                  Self.splitKey(lines[position].content) == nil, !lines[position].content.hasPrefix("- ") {
                joined += " " + lines[position].content
                position += 1
            }
            node = try inline(Substring(joined), line: line)
        }
        if let anchor { anchors[anchor] = node }
        return node
    }

    private mutating func blockScalar(folded: Bool, keep: Bool, strip: Bool, parentIndent: Int) -> YAMLNode {
        var collected: [Substring] = []
        var indent: Int?
        while position < lines.count {
            let line = lines[position]
            if line.isBlank { collected.append(""); position += 1; continue }
            if line.indent <= parentIndent { break }
            let own = indent ?? line.indent
            indent = own
            if line.indent < own { break }
            collected.append(Substring(String(repeating: " ", count: line.indent - own)) + line.content)
            position += 1
        }
        while !keep, collected.last == "" { collected.removeLast() }
        var text = folded ? collected.joined(separator: " ") : collected.joined(separator: "\n")
        // Clip keeps the final line break, if the file has one after the last line.
        let endsWithoutNewline = position == lines.count && lines.last?.isBlank == false
        if !strip && !collected.isEmpty && !endsWithoutNewline { text += "\n" }
        return .scalar(text, quoted: true)
    }

    /// A complete one-line value: alias, flow collection, quoted or plain scalar.
    private func inline(_ text: Substring, line: Int) throws(YAMLError) -> YAMLNode {
        var cursor = FlowCursor(text: Array(text.utf8), line: line, anchors: anchors)
        let node = try cursor.value(inFlow: false)
        cursor.skipSpaces()
        guard cursor.atEnd else { throw YAMLError(line: line, message: "unexpected '\(cursor.remainder)' after a value") }
        return node
    }

    // MARK: helpers

    /// Splits "key: rest" / "key:" at the first ": " (or final ":") outside quotes and brackets.
    static func splitKey(_ s: Substring) -> (Substring, Substring)? {
        var quote: Character?
        var depth = 0
        var index = s.startIndex
        while index < s.endIndex {
            let c = s[index]
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"" { index = s.index(after: index); if index == s.endIndex { break } }
            } else if (c == "\"" || c == "'") && index == s.startIndex {
                quote = c
            } else if c == "[" || c == "{" {
                if index == s.startIndex { return nil }  // a flow collection, not a key
                depth += 1
            } else if c == "]" || c == "}" {
                depth -= 1
            } else if c == ":" && depth == 0 && index > s.startIndex {
                let next = s.index(after: index)
                if next == s.endIndex || s[next] == " " || s[next] == "\t" {
                    return (s[..<index], s[next...].drop { $0 == " " || $0 == "\t" })
                }
            }
            index = s.index(after: index)
        }
        return nil
    }

    static func keyText(_ raw: Substring, line: Int) throws(YAMLError) -> String {
        let key = Line.trimTrailing(raw)
        if key.first == "\"" || key.first == "'" {
            var cursor = FlowCursor(text: Array(key.utf8), line: line, anchors: [:])
            if case let .scalar(text, _) = try cursor.value(inFlow: false) { return text }
        }
        if key.hasPrefix("? ") { throw YAMLError(line: line, message: "complex keys ('? ') are not supported") }
        return String(key)
    }

    static func anchorName(_ s: Substring) -> String? {
        guard s.first == "&" else { return nil }
        let name = s.dropFirst().prefix { $0 != " " }
        return name.isEmpty ? nil : String(name)
    }

    static func isAnchorOnly(_ s: Substring) -> Bool {
        guard anchorName(s) != nil else { return false }
        return s.drop { $0 != " " }.allSatisfy { $0 == " " }
    }

    /// Tags (`!ruby/symbol`, `!!str`) say how Ruby would build the value; the text is what matters here.
    static func dropTag(_ s: Substring) -> Substring {
        guard s.first == "!" else { return s }
        return s.drop { $0 != " " }.drop { $0 == " " }
    }

    static func flowIsClosed(_ s: String) -> Bool {
        var depth = 0
        var quote: Character?
        var previous: Character = "["
        for c in s {
            defer { if c != " " { previous = c } }
            if let q = quote { if c == q { quote = nil }; continue }
            switch c {
            // A quote opens a string only where a value starts: the apostrophe in [don't, x] is a letter.
            case "\"", "'" where "[{,:".contains(previous): quote = c
            case "[", "{": depth += 1
            case "]", "}": depth -= 1
            default: break
            }
        }
        return depth <= 0 && quote == nil
    }

    static func quoteIsClosed(_ s: String) -> Bool {
        guard let q = s.first else { return true }
        var escaped = false
        for c in s.dropFirst() {
            if escaped { escaped = false; continue }
            if c == "\\" && q == "\"" { escaped = true; continue }
            if c == q { return true }
        }
        return false
    }
}

/// Reads flow values (`[a, b]`, `{k: v}`, quoted and plain scalars, `*alias`) from one line's bytes.
private struct FlowCursor {
    let text: [UInt8]
    let line: Int
    let anchors: [String: YAMLNode]
    var index = 0

    init(text: [UInt8], line: Int, anchors: [String: YAMLNode]) {
        self.text = text
        self.line = line
        self.anchors = anchors
    }

    var atEnd: Bool { index >= text.count }
    var remainder: String { String(decoding: text[min(index, text.count)...], as: UTF8.self) }

    mutating func skipSpaces() { while index < text.count && (text[index] == 32 || text[index] == 9) { index += 1 } }

    private func fail(_ message: String) -> YAMLError { YAMLError(line: line, message: message) }

    mutating func value(inFlow: Bool) throws(YAMLError) -> YAMLNode {
        skipSpaces()
        guard index < text.count else { return .null }
        switch text[index] {
        case UInt8(ascii: "["): return try flowSequence()
        case UInt8(ascii: "{"): return try flowMapping()
        case UInt8(ascii: "\""): return .scalar(try doubleQuoted(), quoted: true)
        case UInt8(ascii: "'"): return .scalar(try singleQuoted(), quoted: true)
        case UInt8(ascii: "*"):
            index += 1
            let name = plain(inFlow: true)
            guard let node = anchors[name] else { throw fail("unknown alias '*\(name)'") }
            return node
        case UInt8(ascii: "!"):
            while index < text.count && text[index] != 32 { index += 1 }  // a tag: ignored
            return try value(inFlow: inFlow)
        case UInt8(ascii: "&"):
            while index < text.count && text[index] != 32 { index += 1 }  // an anchor inside a flow value: not referable
            return try value(inFlow: inFlow)
        default:
            let s = plain(inFlow: inFlow)
            if s.isEmpty { return .null }
            if !inFlow && (s.contains(": ") || s.hasSuffix(":")) { throw fail("a plain value cannot contain ': ' (quote it)") }
            return (s == "~" || s == "null" || s == "Null" || s == "NULL") ? .null : .scalar(s, quoted: false)
        }
    }

    private mutating func plain(inFlow: Bool) -> String {
        let start = index
        while index < text.count {
            let c = text[index]
            if inFlow && (c == UInt8(ascii: ",") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}")) { break }
            if inFlow && c == UInt8(ascii: ":") && (index + 1 == text.count || text[index + 1] == 32) && index > start { break }
            index += 1
        }
        var end = index
        while end > start && (text[end - 1] == 32 || text[end - 1] == 9) { end -= 1 }
        return String(decoding: text[start..<end], as: UTF8.self)
    }

    private mutating func flowSequence() throws(YAMLError) -> YAMLNode {
        index += 1
        var items: [YAMLNode] = []
        while true {
            skipSpaces()
            guard index < text.count else { throw fail("unclosed '['") }
            if text[index] == UInt8(ascii: "]") { index += 1; return .sequence(items) }
            items.append(try value(inFlow: true))
            skipSpaces()
            guard index < text.count else { throw fail("unclosed '['") }
            if text[index] == UInt8(ascii: ",") { index += 1 } else if text[index] != UInt8(ascii: "]") { throw fail("expected ',' or ']' in a list") }
        }
    }

    private mutating func flowMapping() throws(YAMLError) -> YAMLNode {
        index += 1
        var pairs: [(key: String, value: YAMLNode)] = []
        while true {
            skipSpaces()
            guard index < text.count else { throw fail("unclosed '{'") }
            if text[index] == UInt8(ascii: "}") { index += 1; return .mapping(pairs) }
            let key = try value(inFlow: true).display
            skipSpaces()
            var node = YAMLNode.null
            if index < text.count && text[index] == UInt8(ascii: ":") {
                index += 1
                node = try value(inFlow: true)
            }
            if let i = pairs.firstIndex(where: { $0.key == key }) { pairs[i].value = node } else { pairs.append((key, node)) }
            skipSpaces()
            guard index < text.count else { throw fail("unclosed '{'") }
            if text[index] == UInt8(ascii: ",") { index += 1 } else if text[index] != UInt8(ascii: "}") { throw fail("expected ',' or '}' in a mapping") }
        }
    }

    private mutating func singleQuoted() throws(YAMLError) -> String {
        index += 1
        var out: [UInt8] = []
        while index < text.count {
            if text[index] == UInt8(ascii: "'") {
                if index + 1 < text.count && text[index + 1] == UInt8(ascii: "'") { out.append(text[index]); index += 2; continue }
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            out.append(text[index])
            index += 1
        }
        throw fail("unclosed single quote")
    }

    private mutating func doubleQuoted() throws(YAMLError) -> String {
        index += 1
        var out: [UInt8] = []
        while index < text.count {
            let c = text[index]
            index += 1
            if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            guard c == UInt8(ascii: "\\") else { out.append(c); continue }
            guard index < text.count else { break }
            let e = text[index]
            index += 1
            switch e {
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "0"): out.append(0)
            case UInt8(ascii: "u"), UInt8(ascii: "x"), UInt8(ascii: "U"):
                let width = e == UInt8(ascii: "x") ? 2 : (e == UInt8(ascii: "u") ? 4 : 8)
                guard index + width <= text.count, let code = UInt32(String(decoding: text[index..<index + width], as: UTF8.self), radix: 16),
                      let scalar = Unicode.Scalar(code) else { throw fail("bad escape in a double-quoted string") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
                index += width
            default: out.append(e)  // \" \\ \/ and the rest: the character itself
            }
        }
        throw fail("unclosed double quote")
    }
}

private extension String {
    var replacingUnderscores: String { contains("_") ? String(filter { $0 != "_" }) : self }
}
