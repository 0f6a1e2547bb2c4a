// The YAML reader never crashes: random bytes, mutated sidekiq.yml files, hostile
// nesting and aliases, and a differential run against Psych.
import Foundation
import XCTest
@testable import Config

/// Robustness and differential tests: random input never crashes `read` (every failure is a
/// YAMLError naming a line), and mutated sidekiq.yml files read as Psych reads them.
final class YAMLFuzzTests: XCTestCase {
    /// A realistic sidekiq.yml (after ERB) with the constructs Rails apps use.
    static let sidekiqYAML = """
        # Sidekiq configuration
        ---
        defaults: &defaults
          :concurrency: 5
          :timeout: 25
          :queues:
            - [critical, 3]
            - default
            - "low"
        :verbose: false
        :pidfile: ./tmp/pids/sidekiq.pid
        :logfile: ./log/sidekiq.log
        :max_retries: 0x19
        :poll_interval_average: 2.5
        :labels: [blue, 'eu west', :canary]
        :limits: {critical: 3, default: 10}
        development:
          <<: *defaults
        production:
          <<: *defaults
          :concurrency: 20
          :tag: "prod #1"
          note: |
            deployed by
            capistrano
        staging: {<<: *defaults, :concurrency: 1_0}

        """

    /// SplitMix64: reproducible randomness, so a failure can be replayed from its iteration.
    struct Random: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let alphabet = Array("-:[]{},&*!|>'\"#%@`?~<= \n\n\n  \t0123456789abxyz_.+eé\r\\")

    /// One to four edits: characters inserted, deleted or replaced, lines duplicated, dropped or re-indented.
    static func mutate(_ text: String, _ random: inout Random) -> String {
        var chars = Array(text)
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let i = chars.isEmpty ? 0 : Int.random(in: 0..<chars.count, using: &random)
            switch Int.random(in: 0..<7, using: &random) {
            case 0, 1: chars.insert(alphabet.randomElement(using: &random)!, at: i)
            case 2: if !chars.isEmpty { chars.remove(at: i) }
            case 3: if !chars.isEmpty { chars[i] = alphabet.randomElement(using: &random)! }
            default:
                var lines = String(chars).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                let l = Int.random(in: 0..<lines.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: lines.insert(lines[l], at: Int.random(in: 0...lines.count, using: &random))
                case 1: lines.remove(at: l)
                default: lines[l] = (Bool.random(using: &random) ? "  " : "") + String(lines[l].dropFirst(Bool.random(using: &random) ? 2 : 0))
                }
                chars = Array(lines.joined(separator: "\n"))
            }
        }
        return String(chars)
    }

    /// Reads `text`; a failure must be a YAMLError on a line that exists (or just past the end).
    private func readChecked(_ text: String) -> YAMLNode?? {
        do {
            let node = try YAMLReader.read(text)
            _ = node?.display  // walking the result must be safe too
            return .some(node)
        } catch {
            let lines = YAMLReader.lineBreaks(in: text.utf8) + 1
            XCTAssertTrue((1...lines + 1).contains(error.line), "line \(error.line) of \(lines): \(error) in \(text.debugDescription)")
            return nil
        }
    }

    func testRandomBytesNeverCrash() {
        var random = Random(state: 1)
        let interesting = Array("-:[]{},&*!|>'\"#%@`?~ \n\t0aZ".utf8)
        var (read, refused) = (0, 0)
        for _ in 0..<5000 {
            let bytes = (0..<Int.random(in: 0...120, using: &random)).map { _ in
                Bool.random(using: &random) ? interesting.randomElement(using: &random)! : UInt8.random(in: 0...255, using: &random)
            }
            if readChecked(String(decoding: bytes, as: UTF8.self)) == nil { refused += 1 } else { read += 1 }
        }
        XCTAssertGreaterThan(refused, 0)
        XCTAssertGreaterThan(read, 0)
    }

    func testMutatedSidekiqYAMLNeverCrashes() {
        var random = Random(state: 2)
        for _ in 0..<5000 {
            _ = readChecked(Self.mutate(Self.sidekiqYAML, &random))
        }
    }

    func testHostileDocumentsAreRefused() {
        let laughs = (1...9).map { "l\($0): &l\($0) [" + Array(repeating: "*l\($0 - 1)", count: 9).joined(separator: ",") + "]" }
        let hostile = [
            String(repeating: "[", count: 100_000),
            String(repeating: "- ", count: 10_000) + "x",
            "l0: &l0 [lol]\n" + laughs.joined(separator: "\n") + "\n",
            "a: \u{0}\n",
            "a: &x {b: *x}\n",
        ]
        for text in hostile {
            XCTAssertThrowsError(try YAMLReader.read(text), String(text.prefix(40)))
        }
        // Deep but sane nesting still reads.
        XCTAssertNotNil(try YAMLReader.read(String(repeating: "[", count: 100) + String(repeating: "]", count: 100)))
    }

    /// The differential test: mutants of a real file and of the oracle documents, each read by us and
    /// by Psych in one Ruby run. YAML_DIFF_COUNT / YAML_DIFF_SEED run more, or others (40,000 take ~30 s).
    func testMutantsReadAsPsychReadsThem() throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["YAML_DIFF_COUNT"].flatMap { Int($0) } ?? 3000
        var random = Random(state: environment["YAML_DIFF_SEED"].flatMap { UInt64($0) } ?? 3)
        let bases = [Self.sidekiqYAML] + YAMLReaderTests.documents
        let documents =
            bases
            + (0..<count).map { _ in
                var document = bases.randomElement(using: &random)!
                for _ in 0..<Int.random(in: 1...3, using: &random) { document = Self.mutate(document, &random) }
                return document
            }
        let psych = try psychBatch(documents)
        var (compared, mismatches) = (0, [String]())
        for (document, expected) in zip(documents, psych) where expected != "unsupported" {
            compared += 1
            let ours: String
            do { ours = exactCanonical(try YAMLReader.read(document)) } catch { ours = "error" }
            if ours != expected { mismatches.append("\(document.debugDescription)\n  ours:  \(ours)\n  psych: \(expected)") }
        }
        XCTAssertGreaterThan(compared, count * 9 / 10)
        XCTAssertEqual(mismatches.count, 0, mismatches.prefix(5).joined(separator: "\n"))
    }

    /// PlainScalar against Psych's own ScalarScanner#tokenize, on tricky and random scalars.
    func testPlainScalarsTypeAsPsychTypesThem() throws {
        var random = Random(state: 4)
        let letters = Array("0123456789_,.:-+xbeEoO~nNuUlLyYsStTrRfFaA \n\"'é")
        let tricky = [
            "1:30", "1:30:00", "-1:30", "1:30.5", "1:30.5_5", "1:30._5", "1_0:30.5", "0o17", "010", "08", "0x1F", "0X1F",
            "1,000", "1_000", "_1", "1_", "1__0", ".5", "-.5", "1.", "1.e+5", "1.5e3", "1.5e+3", ".e+5", "+.e+5", "0b_", "0x_",
            "0b,", "0x,1", "0b101", "-0b101", "0_7", "00", "0", "-0", "+", "-", ".", "+.", "1e+400", "1.0e+400",
            "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
            "yes", "Yes", "YES", "yEs", "On", "oFF", "No", "nULL", "Null", "~", "y", "n", "null\nx", "x\nno", "n\n\ny",
            ":a", ":\"x y\"", ":'a'b'", "::", ":", ":\"x", "é1", "ñ", "a1", "1a", "2024-01-01", "2001-12-14 21:59:43.10 -5",
            ".inf", "-.Inf", "+.INF", ".NaN", ".nan", "=", "<<", "true", "FALSE", "trueX", "yesno", "-1_000.5", "1,0.5",
        ]
        let randomOnes = (0..<4000).map { _ in String((0..<Int.random(in: 1...6, using: &random)).map { _ in letters.randomElement(using: &random)! })
        }
        let inputs = tricky + randomOnes
        let psych = try psychRun(
            #"""
            ss = Psych::ScalarScanner.new(Psych::ClassLoader.new)
            INPUTS.each do |s|
              v = begin; ss.tokenize(s); rescue ArgumentError; :__invalid__; end
              out = case v
                    when :__invalid__ then "invalid"
                    when nil then "null"
                    when true, false then v.to_s
                    when Integer then v.bit_length < 64 ? "int #{v}" : "bigint"
                    when Float then v.nan? ? "nan" : "float #{[v].pack("G").unpack1("H*")}"
                    when Symbol then "symbol #{v}"
                    else "string"  # String, Date, Time
                    end
              STDOUT.write(out, "\0")
            end
            """#, inputs)
        for (input, expected) in zip(inputs, psych) {
            let ours: String
            switch PlainScalar(input) {
            case .invalid: ours = "invalid"
            case .null: ours = "null"
            case let .bool(b): ours = String(b)
            case let .int(n): ours = "int \(n)"
            case .bigInt: ours = "bigint"
            case let .float(d):
                let hex = String(d.bitPattern, radix: 16)
                ours = d.isNaN ? "nan" : "float " + String(repeating: "0", count: 16 - hex.count) + hex
            case let .symbol(name): ours = "symbol \(name)"
            case .string: ours = "string"
            }
            XCTAssertEqual(ours, expected, input.debugDescription)
        }
    }
}
