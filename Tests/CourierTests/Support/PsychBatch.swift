// Test support: many YAML documents through Psych in one Ruby process (the oracle).
import Foundation
@testable import Config

/// Runs `script` (Ruby, Psych loaded) once over all `inputs`, NUL-separated on stdin,
/// and returns its NUL-separated answers: one Ruby process for many cases.
func psychRun(_ script: String, _ inputs: [String]) throws -> [String] {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("psych-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let (input, output, errors, file) = (
        dir.appendingPathComponent("in").path, dir.appendingPathComponent("out").path,
        dir.appendingPathComponent("err").path, dir.appendingPathComponent("s.rb").path
    )
    precondition(!inputs.contains { $0.contains("\0") }, "inputs are NUL-separated")
    try inputs.joined(separator: "\0").write(toFile: input, atomically: true, encoding: .utf8)
    try ("require 'yaml'\nINPUTS = STDIN.read.force_encoding('UTF-8').split(\"\\0\", -1)\n" + script).write(
        toFile: file, atomically: true, encoding: .utf8)
    let child = try ChildProcess(
        try which("ruby"), ["-e", "STDIN.reopen(ARGV[1]); load ARGV[0]", file, input],
        environment: ProcessInfo.processInfo.environment, stdout: output, stderr: errors)
    guard child.wait() == 0 else { throw TestFailure("ruby failed: \((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")") }
    let answers = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(
        String.init)
    guard answers.count == inputs.count else { throw TestFailure("ruby answered \(answers.count) of \(inputs.count)") }
    return answers
}

/// Each document as `YAML.unsafe_load` reads it, in `exactCanonical`'s rendering; "error" when Psych
/// refuses it; "unsupported" when it loads to something a YAMLNode cannot hold (dates, bignums,
/// non-string keys, recursive structures, binary strings).
func psychBatch(_ documents: [String]) throws -> [String] {
    try psychRun(
        #"""
        class Unsupported < StandardError; end
        def str(s)
          # (A Symbol's to_s is US-ASCII when its name is; binary strings come from !binary.)
          raise Unsupported unless [Encoding::UTF_8, Encoding::US_ASCII].include?(s.encoding) && s.valid_encoding?
          '"' + s.gsub(/[\\"\n\t\0]/) { |c| { "\\" => "\\\\", '"' => '\\"', "\n" => "\\n", "\t" => "\\t", "\0" => "\\0" }[c] } + '"'
        end
        def key(k)
          case k
          when Symbol then k.to_s
          when String then k.start_with?(":") && k.length > 1 ? k[1..] : k  # what a String-keyed YAMLNode can tell apart
          when nil then ""
          else raise Unsupported
          end
        end
        def canon(v, depth = 0)
          raise Unsupported if depth > 100
          case v
          when nil then "null"
          when true, false then v.to_s
          when Integer then v.bit_length < 64 ? v.to_s : raise(Unsupported)
          when Float then v.nan? ? "nan" : "f" + [v].pack("G").unpack1("H*")
          when Symbol then str(v.to_s)
          when String then str(v)
          when Array then "[" + v.map { |x| canon(x, depth + 1) }.join(",") + "]"
          when Hash then "{" + v.map { |k, x| str(key(k)) + ":" + canon(x, depth + 1) }.sort.join(",") + "}"
          else raise Unsupported
          end
        end
        INPUTS.each do |d|
          out = begin
            canon(YAML.unsafe_load(d, fallback: nil))
          rescue Unsupported, SystemStackError
            "unsupported"
          rescue Psych::Exception, ArgumentError, TypeError, RangeError, NoMethodError
            "error"
          end
          STDOUT.write(out, "\0")
        end
        """#, documents)
}

/// Our side of `psychBatch`: exact floats, symbols as their names, pairs sorted as Ruby sorts strings.
func exactCanonical(_ node: YAMLNode?) -> String {
    guard let node else { return "null" }
    func str(_ s: String) -> String {
        "\""
            + s.unicodeScalars.map { c -> String in
                switch c {
                case "\"": return "\\\""
                case "\\": return "\\\\"
                case "\n": return "\\n"
                case "\t": return "\\t"
                case "\0": return "\\0"
                default: return String(c)
                }
            }.joined() + "\""
    }
    switch node {
    case .null: return "null"
    case let .scalar(text, quoted):
        if quoted { return str(text) }
        if let b = node.bool { return String(b) }
        if let n = node.int { return String(n) }
        if let d = node.double {
            let hex = String(d.bitPattern, radix: 16)
            return d.isNaN ? "nan" : "f" + String(repeating: "0", count: 16 - hex.count) + hex
        }
        return str(node.rubyText ?? text)
    case let .sequence(items): return "[" + items.map(exactCanonical).joined(separator: ",") + "]"
    case let .mapping(pairs):
        let rendered = pairs.map {
            str($0.key.hasPrefix(":") && $0.key.count > 1 ? String($0.key.dropFirst()) : $0.key) + ":" + exactCanonical($0.value)
        }
        return "{" + rendered.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.joined(separator: ",") + "}"
    }
}
