// The command line, without a parsing library: a table of flags, their help,
// and the errors a person can act on. Kept small on purpose (swift-argument-
// parser 1.8 costs ~34 s of a cold debug build, ~30 % of courier's, and pulls
// FoundationEssentials into the binary): most flags take one value, some may
// repeat, a switch takes none, a flag may have an optional value
// (`--watch`, `--watch=5`, `--watch 5`), and `--help`/`--version` stand alone.
// A subcommand (`courier cancel JID`) may also take positional arguments.

/// One flag that takes a value.
package struct Flag {
    /// What the value must look like; checked while parsing, so a mistyped number is the first error reported.
    package enum Kind { case text, integer, number }

    package let long: String
    package let short: Character?
    /// Shown as `<value>` in help and errors.
    package let value: String
    package let kind: Kind
    package let repeatable: Bool
    package let help: String
    /// A switch takes no value: present means `"true"`.
    package let isSwitch: Bool
    /// The value when the flag is given bare; the next argument is its value only if it is of the flag's kind.
    package let defaultValue: String?

    package init(
        _ long: String, short: Character? = nil, value: String? = nil, kind: Kind = .text, repeatable: Bool = false,
        defaultValue: String? = nil, help: String
    ) {
        self.long = long
        self.short = short
        self.value = value ?? long
        self.kind = kind
        self.repeatable = repeatable
        self.isSwitch = false
        self.defaultValue = defaultValue
        self.help = help
    }

    /// A flag without a value (`--json`).
    package static func toggle(_ long: String, short: Character? = nil, help: String) -> Flag { Flag(switch: long, short: short, help: help) }

    private init(switch long: String, short: Character?, help: String) {
        self.long = long
        self.short = short
        self.value = ""
        self.kind = .text
        self.repeatable = false
        self.isSwitch = true
        self.defaultValue = nil
        self.help = help
    }

    /// How errors name the flag: the form that was typed, with its value placeholder.
    package func spelled(_ typed: String) -> String {
        isSwitch ? typed : defaultValue != nil ? "\(typed)[=<\(value)>]" : "\(typed) <\(value)>"
    }

    package var synopsis: String {
        (short.map { "-\($0), " } ?? "") + "--\(long)" + (isSwitch ? "" : defaultValue != nil ? "[=<\(value)>]" : " <\(value)>")
    }

    /// Whether `text` is a well-formed value for this flag.
    func accepts(_ text: String) -> Bool {
        switch kind {
        case .text: true
        case .integer: Int(text) != nil
        case .number: Double(text)?.isFinite == true
        }
    }
}

/// Input the command line cannot take: the message names what to fix (exit 64).
package struct UsageError: Error, CustomStringConvertible {
    package let message: String
    /// The flag's help line, shown under the error when a value was wrong.
    package var help: String?
    package init(_ message: String, help: String? = nil) {
        self.message = message
        self.help = help
    }
    package var description: String { message }
}

/// What was asked for.
package enum CommandLineRequest {
    case run(ParsedFlags)
    case help
    case version
}

/// The values given, by long flag name, in the order given.
package struct ParsedFlags {
    package internal(set) var values: [String: [String]] = [:]
    /// Arguments that are not flags, in order (only when the caller allows them).
    package internal(set) var positionals: [String] = []

    package func string(_ long: String) -> String? { values[long]?.last }
    package func strings(_ long: String) -> [String] { values[long] ?? [] }

    /// An `.integer` flag's value (checked while parsing).
    package func int(_ long: String) -> Int? { string(long).flatMap { Int($0) } }

    /// Whether a switch was given.
    package func isSet(_ long: String) -> Bool { values[long] != nil }

    /// A `.number` flag's value (checked while parsing).
    package func double(_ long: String) -> Double? { string(long).flatMap { Double($0) } }
}

package enum FlagParser {
    /// `positionals`: how many non-flag arguments may appear (after `--`, anything is one).
    package static func parse(_ arguments: [String], flags: [Flag], positionals: Int = 0) throws(UsageError) -> CommandLineRequest {
        var byLong: [String: Flag] = [:]
        var byShort: [Character: Flag] = [:]
        for flag in flags {
            byLong[flag.long] = flag
            if let short = flag.short { byShort[short] = flag }
        }
        var parsed = ParsedFlags()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            if argument == "-h" || argument == "--help" { return .help }
            if argument == "--version" { return .version }
            if argument.hasPrefix("--help=") || argument.hasPrefix("--version=") {
                throw UsageError("'\(argument.split(separator: "=")[0])' takes no value")
            }
            if positionals > 0 && (argument == "--" || !argument.hasPrefix("-")) {
                let taken = argument == "--" ? Array(rest) : [argument]
                if argument == "--" { rest = [] }
                for value in taken {
                    guard parsed.positionals.count < positionals else { throw UsageError("Unexpected argument '\(value)'") }
                    parsed.positionals.append(value)
                }
                continue
            }
            if argument == "--" || argument == "-" { throw UsageError("Unexpected argument '\(argument)'") }
            let flag: Flag
            var inline: String?
            if argument.hasPrefix("--") {
                let body = argument.dropFirst(2)
                let name = body.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                guard let known = byLong[name] else { throw UsageError("Unknown option '--\(name)'") }
                flag = known
                if let equals = body.firstIndex(of: "=") { inline = String(body[body.index(after: equals)...]) }
            } else if argument.hasPrefix("-"), argument.count >= 2 {
                let letter = argument.dropFirst().first!
                guard let known = byShort[letter] else { throw UsageError("Unknown option '-\(letter)'") }
                flag = known
                let attached = argument.dropFirst(2)
                if !attached.isEmpty { inline = String(attached.hasPrefix("=") ? attached.dropFirst() : attached) }
            } else {
                throw UsageError("Unexpected argument '\(argument)'")
            }
            let typed = argument.hasPrefix("--") ? "--\(flag.long)" : "-\(flag.short!)"
            if flag.isSwitch {
                guard inline == nil else { throw UsageError("'\(typed)' takes no value") }
                parsed.values[flag.long] = ["true"]
                continue
            }
            if let fallback = flag.defaultValue, inline == nil {
                // Bare: the next argument is the value only if it reads as one (`--watch 5`), else the default.
                let next = rest.first.flatMap { flag.kind != .text && flag.accepts($0) ? $0 : nil }
                if next != nil { rest = rest.dropFirst() }
                inline = next ?? fallback
            }
            // A following "--flag" is the next flag, not this one's value (a value like "-1" still is one).
            guard let value = inline ?? (rest.first.map { !$0.hasPrefix("--") } == true ? rest.popFirst() : nil) else {
                throw UsageError("Missing value for '\(flag.spelled(typed))'", help: "\(flag.spelled(typed))  \(flag.help)")
            }
            if !flag.repeatable, parsed.values[flag.long] != nil {
                // As the common CLI convention: the last one wins.
                parsed.values[flag.long] = []
            }
            guard flag.accepts(value) else {
                throw UsageError("The value '\(value)' is invalid for '\(flag.spelled(typed))'", help: "\(flag.spelled(typed))  \(flag.help)")
            }
            parsed.values[flag.long, default: []].append(value)
        }
        return .run(parsed)
    }

    /// `--help`: the overview, then every flag with its help wrapped to 80 columns.
    package static func help(command: String, overview: String, discussion: String, flags: [Flag], usage: String? = nil) -> String {
        var out = "OVERVIEW: \(overview)\n\n\(wrap(discussion, width: 80, indent: 0))\n\nUSAGE: \(usage ?? "\(command) <options>")\n\nOPTIONS:\n"
        let column = 26
        let rows =
            flags.map { ($0.synopsis + ($0.repeatable ? " ..." : ""), $0.help) }
            + [("--version", "Show the version."), ("-h, --help", "Show help information.")]
        for (synopsis, text) in rows {
            let left = "  " + synopsis
            let body = wrap(text, width: 80 - column, indent: column)
            if left.count < column - 1 {
                out += left + String(repeating: " ", count: column - left.count) + body.drop { $0 == " " } + "\n"
            } else {
                out += left + "\n" + body + "\n"
            }
        }
        return out
    }

    /// Words wrapped at `width`, each line indented by `indent` spaces; blank lines kept as paragraph breaks.
    package static func wrap(_ text: String, width: Int, indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { paragraph -> String in
            var lines: [String] = []
            var line = ""
            for word in paragraph.split(separator: " ") {
                if !line.isEmpty && line.count + 1 + word.count > width {
                    lines.append(pad + line)
                    line = ""
                }
                line += (line.isEmpty ? "" : " ") + word
            }
            lines.append(pad + line)
            return lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }
}
