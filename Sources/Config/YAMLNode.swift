// The values the YAML reader gives (YAMLNode) and its error, with the
// Psych-compatible readings of a plain scalar (`int`, `double`, `bool`,
// `rubyText`) that sidekiq.yml's settings use.

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
