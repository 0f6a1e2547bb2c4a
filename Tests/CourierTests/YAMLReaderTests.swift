// The YAML reader against Ruby's own Psych (what Sidekiq loads sidekiq.yml with), case by case.
@testable import Config
import Foundation
import XCTest

/// The YAML reader against Ruby's own Psych (what Sidekiq loads sidekiq.yml
/// with) as the oracle: each document must read to the same structure.
final class YAMLReaderTests: XCTestCase {
    static let documents: [String] = [
        // Sidekiq's documented example, with environments and comments.
        """
        # Sample configuration file for Sidekiq.
        ---
        :verbose: false
        :concurrency: 10
        :timeout: 25

        # Sidekiq will run this file through ERB when reading it.
        :queues:
          - critical
          - default
          - low   # trailing comment
        production:
          :concurrency: 25
        staging:
          :concurrency: 15
        """,
        // Weighted pairs, flow lists, a list at its key's own indent.
        """
        :queues:
        - [critical, 3]
        - [default, 2]
        - ["low", 1]
        :labels: [blue, "eu west", 'it''s']
        :limits: {critical: 3, default: 10}
        """,
        // Anchors, aliases and merges as Rails files use them.
        """
        defaults: &defaults
          :concurrency: 5
          :queues:
            - default
        development:
          <<: *defaults
        production:
          <<: *defaults
          :concurrency: 20
          :tag: "prod #1"
        """,
        // Scalars: quoting, escapes, numbers, booleans, null, symbols.
        """
        a: "tab\\tand \\"quotes\\" \\u00e9"
        b: 'single # not a comment'
        c: 2.5
        d: -7
        e: true
        f: ~
        g:
        h: :symbol
        i: plain text, with a colon:inside
        j: 1_000
        k: "# quoted hash"
        """,
        // Lists of mappings, nested lists, block scalars.
        """
        jobs:
          - name: first
            weight: 2
          - name: second
            tags:
              - x
              - y
          - - nested
            - list
        note: |
          line one
          line two
        folded: >
          folded
          text
        """,
        "--- {a: 1, b: [x, y]}\n",
        // An editor's BOM, an anchored root, a quoted key in a list item, an apostrophe in a flow list.
        "\u{FEFF}:concurrency: 3\n",
        "--- &root\n:concurrency: 4\n",
        "jobs:\n  - \"name\": x\n    weight: 2\n:labels: [don't, x]\n",
        ":concurrency: 3\r\n:queues:\r\n  - a\r\n  - b\r\n",
        // Psych's YAML 1.1 typing of plain scalars (ScalarScanner#tokenize), and tags.
        """
        a: yes
        b: No
        c: ON
        d: off
        e: 0x1F
        f: 010
        g: 1,000
        h: 1:30:00
        i: 0o17
        j: 08
        k: 1.5e+3
        l: 1.5e3
        m: nULL
        n: :"quoted symbol"
        o: !!str 5
        p: !ruby/symbol low
        q: !!int "7"
        r: 1_
        s: .5
        t: -.inf
        u: 1:30
        v: "yes"
        """,
        // Psych's merges: merged keys override earlier ones, a list merges first-wins, a non-mapping is a plain key.
        """
        base: &base {a: 1, b: 2}
        over:
          a: 0
          <<: *base
          c: 3
        list:
          <<: [{a: 1}, {a: 2, b: 2}]
        scalar:
          <<: 5
        quoted:
          "<<": *base
        own: &own
          a: 1
          <<: *own
          inner: {<<: *own, b: 2}
        """,
        // Anchors inside flow collections, complex keys, block scalar chomping, folded plain scalars.
        "x: [&a 1, *a]\n? y\n: 2\nkeep: |+\n  k\n\nstrip: >-\n  s\n  t\nplain: one\n  two\n",
        // Only the first document is read, as YAML.load does.
        "a: 1\n---\nb: 2\n",
    ]

    func testReadsWhatPsychReads() throws {
        for (i, document) in Self.documents.enumerated() {
            let ours = try YAMLReader.read(document).map(Self.canonical) ?? "null"
            let psych = try psychCanonical(document)
            XCTAssertEqual(ours, psych, "document \(i):\n\(document)")
        }
    }

    /// Nothing, comments only, or a bare `---`: no document (Psych's load gives its fallback or nil).
    func testEmptyDocuments() throws {
        for text in ["", "# only a comment\n", "---\n", "--- # comment\n", "\u{FEFF}", "\n\n"] {
            XCTAssertNil(try YAMLReader.read(text), text.debugDescription)
        }
        XCTAssertEqual(try YAMLReader.read("~\n"), .null)
        XCTAssertEqual(try YAMLReader.read("''\n"), .scalar("", quoted: true))
    }

    func testErrorsNameTheLine() {
        for (text, line) in [
            ("a: 1\nb: [1, 2\n", 3), ("a: 1\n  b: 2\n", 2), ("a: 1\nb: *nope\n", 2), ("a: 1\nb: 0x_\n", 2),
            ("a: 1\n\nb: \u{7}\n", 3), ("a: &x [*x]\n", 1),
        ] {
            XCTAssertThrowsError(try YAMLReader.read(text), text) { error in
                XCTAssertEqual((error as? YAMLError)?.line, line, "\(text.debugDescription): \(error)")
            }
        }
    }

    func testRefusesWhatItCannotRead() throws {
        let bad = [
            "a: [1, 2\n",
            "a: 'open\n",
            "a: 1\n  b: 2\n",
            "- a\nb: 1\n",
            "a: *missing\n",
            "a: plain: value\n",
            "production:\n\t:concurrency: 5\n",
        ]
        for text in bad {
            XCTAssertThrowsError(try YAMLReader.read(text), text) { error in
                XCTAssertTrue("\(error)".hasPrefix("line "), "\(error)")
            }
        }
        // Psych refuses each of them too.
        XCTAssertEqual(try psychBatch(bad), Array(repeating: "error", count: bad.count))
    }

    /// A canonical JSON-like rendering with Ruby's scalar typing (symbols become their names).
    static func canonical(_ node: YAMLNode) -> String {
        switch node {
        case .null: return "null"
        case let .scalar(text, quoted):
            if quoted { return quote(text) }
            if let b = node.bool { return String(b) }
            if let n = node.int { return String(n) }
            if let d = node.double { return d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : String(d) }
            return quote(node.rubyText ?? text)  // a Symbol's name: `:"a b"` is `a b`
        case let .sequence(items): return "[" + items.map(canonical).joined(separator: ",") + "]"
        case let .mapping(pairs):
            let keys = pairs.map { (key: $0.key.hasPrefix(":") ? String($0.key.dropFirst()) : $0.key, value: $0.value) }
            return "{" + keys.sorted { $0.key < $1.key }.map { quote($0.key) + ":" + canonical($0.value) }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String {
        "\""
            + s.unicodeScalars.map { c -> String in
                switch c {
                case "\"": return "\\\""
                case "\\": return "\\\\"
                case "\n": return "\\n"
                case "\t": return "\\t"
                default: return String(c)
                }
            }.joined() + "\""
    }

    /// The same rendering of what Psych loads.
    private func psychCanonical(_ document: String) throws -> String {
        let ruby = #"""
            require "yaml"
            def canon(v)
              case v
              when nil then "null"
              when true, false then v.to_s
              when Integer then v.to_s
              when Float then v.to_s
              when Symbol then canon(v.to_s)
              when String then '"' + v.gsub("\\") { "\\\\" }.gsub('"') { '\\"' }.gsub("\n", "\\n").gsub("\t", "\\t") + '"'
              when Array then "[" + v.map { |x| canon(x) }.join(",") + "]"
              when Hash then "{" + v.map { |k, x| [k.to_s, x] }.sort_by(&:first).map { |k, x| canon(k) + ":" + canon(x) }.join(",") + "}"
              else raise "unexpected #{v.class}"
              end
            end
            text = STDIN.read
            data = YAML.respond_to?(:unsafe_load) ? YAML.unsafe_load(text) : YAML.load(text)
            print canon(data)
            """#
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yaml-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (input, output, errors) = (
            dir.appendingPathComponent("in.yml").path, dir.appendingPathComponent("out").path, dir.appendingPathComponent("err").path
        )
        try document.write(toFile: input, atomically: true, encoding: .utf8)
        let script = dir.appendingPathComponent("canon.rb").path
        try ruby.write(toFile: script, atomically: true, encoding: .utf8)
        let child = try ChildProcess(
            try which("ruby"), ["-e", "STDIN.reopen(ARGV[1]); load ARGV[0]", script, input],
            environment: ProcessInfo.processInfo.environment, stdout: output, stderr: errors)
        guard child.wait() == 0 else { throw TestFailure("psych failed: \((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")") }
        return try String(contentsOfFile: output, encoding: .utf8)
    }
}
