// Streamed batches' answers read without a network: lines split across
// arbitrary chunk boundaries, each line's outcome, the final line, and what
// jobs without a line get when a stream is cut or refused.
import ExecutorProtocol
import SidekiqModel
import XCTest

final class StreamProtocolTests: XCTestCase {
    private func split(_ text: String, chunk: Int, maxLine: Int = 1 << 20) -> [String] {
        var splitter = LineSplitter(maxLineBytes: maxLine)
        var lines: [String] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let part = Array(bytes[i..<min(i + chunk, bytes.count)])
            part.withUnsafeBytes { raw in splitter.feed(raw) { lines.append(String(decoding: $0, as: UTF8.self)) } }
            i += chunk
        }
        return lines
    }

    func testLinesSurviveAnyChunking() {
        let text = "{\"index\":1}\n{\"index\":0,\"error_message\":\"a\\nb\"}\n{\"done\":true,\"count\":2}\n"
        for chunk in 1...text.utf8.count {
            XCTAssertEqual(
                split(text, chunk: chunk), [#"{"index":1}"#, #"{"index":0,"error_message":"a\nb"}"#, #"{"done":true,"count":2}"#], "chunk \(chunk)")
        }
        XCTAssertEqual(split("{\"a\":1}\n{\"b\"", chunk: 3), [#"{"a":1}"#], "an unfinished line is not a line")
        XCTAssertEqual(
            split(String(repeating: "x", count: 50) + "\nok\n", chunk: 7, maxLine: 20), ["ok"], "an overlong line is dropped, the next one read")
    }

    func testEachLineReadsAsTheSingleJobAnswer() {
        XCTAssertEqual(
            StreamProtocol.read(line: Array(#"{"index":3,"jid":"j","code":200,"status":"ok"}"#.utf8)[...]), .job(index: 3, outcome: .succeeded))
        let failed = StreamProtocol.read(
            line: Array(
                #"{"index":0,"jid":"j","code":422,"status":"failed","error_class":"E","error_message":"m","backtrace":["a:1"],"retry_in":10,"retry_action":null}"#
                    .utf8)[...])
        XCTAssertEqual(failed, .job(index: 0, outcome: .failed(JobFailure(errorClass: "E", errorMessage: "m", backtrace: ["a:1"], retryIn: 10))))
        let interrupted = StreamProtocol.read(
            line: Array(
                #"{"index":1,"jid":"j","code":409,"status":"interrupted","reason":"timeout","error_class":"Courier::JobTimeout","error_message":"x","backtrace":[],"started":false}"#
                    .utf8)[...])
        guard case .job(1, .interrupted("timeout", _)) = interrupted else { return XCTFail("\(interrupted)") }
        guard
            case .job(2, .executorUnavailable(_, nil, false)) = StreamProtocol.read(
                line: Array(#"{"index":2,"jid":null,"code":503,"status":"unavailable","started":false}"#.utf8)[...])
        else {
            return XCTFail("a job the executor never started goes back to its queue")
        }
        guard
            case .job(4, .refused(400, _)) = StreamProtocol.read(
                line: Array(#"{"index":4,"jid":null,"code":400,"status":"refused","reason":"malformed JSON"}"#.utf8)[...])
        else {
            return XCTFail("a refused entry")
        }
        XCTAssertEqual(StreamProtocol.read(line: Array(#"{"done":true,"count":7,"extra":1}"#.utf8)[...]), .done(count: 7))
        for junk in ["", "not json", "[1]", #"{"index":-1,"code":200}"#, #"{"code":200}"#, #"{"index":1}"#] {
            XCTAssertEqual(StreamProtocol.read(line: Array(junk.utf8)[...]), .ignored, junk)
        }
    }

    func testJobsWithoutALineAreTheExecutorsProblem() {
        let cut = StreamProtocol.unanswered(result: .response(status: 200, body: [], retryAfter: nil), complete: false, jobTimeout: .seconds(5))
        guard case .executorUnavailable(_, nil, true) = cut else { return XCTFail("a cut stream: may have run, back to the queue") }
        let reset = StreamProtocol.unanswered(
            result: .transportError(reason: "reset", sent: true, timedOut: false), complete: false, jobTimeout: .seconds(5))
        guard case .executorUnavailable(_, nil, true) = reset else { return XCTFail("\(reset)") }
        XCTAssertEqual(
            StreamProtocol.unanswered(result: .transportError(reason: "t", sent: true, timedOut: true), complete: false, jobTimeout: .seconds(5)),
            .timedOut(after: .seconds(5)), "no line within the job timeout: that job timed out")
        guard
            case .executorUnavailable(_, .some(.seconds(3)), false) = StreamProtocol.unanswered(
                result: .response(status: 503, body: [], retryAfter: "3"), complete: false, jobTimeout: .seconds(5))
        else { return XCTFail("503 + Retry-After") }
        guard
            case .executorUnavailable(_, nil, false) = StreamProtocol.unanswered(
                result: .response(status: 413, body: Array(#"{"status":"refused","reason":"too many jobs"}"#.utf8), retryAfter: nil), complete: false,
                jobTimeout: .seconds(5))
        else { return XCTFail("an envelope refusal is not the jobs' fault") }
        guard
            case let .executorUnavailable(reason, nil, false) = StreamProtocol.unanswered(
                result: .response(status: 404, body: [], retryAfter: nil), complete: false, jobTimeout: .seconds(5))
        else { return XCTFail("404") }
        XCTAssertTrue(reason.contains("/v1/jobs/stream"))
    }

    func testTheBodyCarriesEachPayloadsExactBytes() throws {
        let payload = #"{"class":"A","args":["é\"\n"],"jid":"x"}"#
        let body = StreamProtocol.body([ExecutionRequest(body: Array(payload.utf8), jid: "x", queue: "q\"", attempt: 1)])
        let parsed = try JSONReader.parse(body)
        XCTAssertEqual(parsed["jobs"]?.arrayValue?.first?["payload"]?.stringValue, payload)
        XCTAssertEqual(parsed["jobs"]?.arrayValue?.first?["queue"]?.stringValue, "q\"")
    }

    /// The byte-level escaper writes exactly what the String one writes, for any bytes
    /// (ASCII, every control byte, UTF-8, invalid UTF-8), and round-trips through the reader.
    func testTheByteEscaperMatchesTheStringOne() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = Array(0..<0x20) + Array("\"\\ az{}:,0".utf8) + [0x7F] + Array("é€😀".utf8) + [0xFF, 0xC3]
        for round in 0..<3000 {
            let count = Int.random(in: 0...40, using: &generator)
            let asciiOnly = round % 2 == 0
            let bytes = (0..<count).map { _ in
                asciiOnly ? alphabet.filter { $0 < 0x80 }.randomElement(using: &generator)! : alphabet.randomElement(using: &generator)!
            }
            var out: [UInt8] = Array("x".utf8)
            JSONWriter.appendString(bytes, to: &out)
            let expected = "x" + JSONWriter.string(String(decoding: bytes, as: UTF8.self))
            XCTAssertEqual(String(decoding: out, as: UTF8.self), expected, "bytes \(bytes)")
            if asciiOnly {
                XCTAssertEqual(try JSONReader.parse(Array(out.dropFirst())).stringValue, String(decoding: bytes, as: UTF8.self))
            }
        }
    }
}
