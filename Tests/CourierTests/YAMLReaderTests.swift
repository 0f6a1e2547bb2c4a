@testable import Config
@testable import CourierService
@testable import ExecutorProtocol
@testable import JobDispatch
@testable import Ops
@testable import RedisAdapters
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
    ]

    func testReadsWhatPsychReads() throws {
        for (i, document) in Self.documents.enumerated() {
            let ours = try YAMLReader.read(document).map(Self.canonical) ?? "null"
            let psych = try psychCanonical(document)
            XCTAssertEqual(ours, psych, "document \(i):\n\(document)")
        }
    }

    func testRefusesWhatItCannotRead() {
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
    }

    /// A canonical JSON-like rendering with Ruby's scalar typing (symbols become their names).
    static func canonical(_ node: YAMLNode) -> String {
        switch node {
        case .null: return "null"
        case let .scalar(text, quoted):
            if quoted { return quote(text) }
            if text == "true" || text == "false" { return text }
            if let n = node.int { return String(n) }
            if let d = node.double { return String(d) }
            if text.hasPrefix(":") && text.count > 1 { return quote(String(text.dropFirst())) }
            return quote(text)
        case let .sequence(items): return "[" + items.map(canonical).joined(separator: ",") + "]"
        case let .mapping(pairs):
            let keys = pairs.map { (key: $0.key.hasPrefix(":") ? String($0.key.dropFirst()) : $0.key, value: $0.value) }
            return "{" + keys.sorted { $0.key < $1.key }.map { quote($0.key) + ":" + canonical($0.value) }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String {
        "\"" + s.unicodeScalars.map { c -> String in
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
        let (input, output, errors) = (dir.appendingPathComponent("in.yml").path, dir.appendingPathComponent("out").path, dir.appendingPathComponent("err").path)
        try document.write(toFile: input, atomically: true, encoding: .utf8)
        let script = dir.appendingPathComponent("canon.rb").path
        try ruby.write(toFile: script, atomically: true, encoding: .utf8)
        let child = try ChildProcess(try which("ruby"), ["-e", "STDIN.reopen(ARGV[1]); load ARGV[0]", script, input],
                                     environment: ProcessInfo.processInfo.environment, stdout: output, stderr: errors)
        guard child.wait() == 0 else { throw TestFailure("psych failed: \((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")") }
        return try String(contentsOfFile: output, encoding: .utf8)
    }
}
