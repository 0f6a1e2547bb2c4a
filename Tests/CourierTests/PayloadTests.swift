// The byte-preserving job payload reader and editor.
import SidekiqModel
import XCTest

/// The job payload reader: decoding, validation and byte-preserving edits.
final class PayloadTests: XCTestCase {
    let sample =
        #"{"retry":true,"queue":"default","args":[1,"a",{"x":1.50}],"class":"OkJob","jid":"d48a0000000000000000abcd","created_at":1795339048.9026532,"enqueued_at":1795339048.9030194,"bid":"b-1","custom":{"nested":[true,null]}}"#

    func testReadsTopLevelFields() throws {
        let payload = try JobPayload(raw: Array(sample.utf8))
        XCTAssertEqual(payload.jid, "d48a0000000000000000abcd")
        XCTAssertEqual(payload.className, "OkJob")
        XCTAssertEqual(payload.queue, "default")
        XCTAssertEqual(payload["retry"], .bool(true))
        XCTAssertEqual(payload.rawValue(of: "created_at"), "1795339048.9026532")
        XCTAssertEqual(payload.keys, ["retry", "queue", "args", "class", "jid", "created_at", "enqueued_at", "bid", "custom"])
        XCTAssertNoThrow(try payload.validate())
    }

    func testEditKeepsEveryOtherByte() throws {
        let payload = try JobPayload(raw: Array(sample.utf8))
        let edited = payload.editing(set: [("queue", "\"low\""), ("retry_count", "0")])
        XCTAssertEqual(
            edited.text,
            sample.replacingOccurrences(of: #""queue":"default""#, with: #""queue":"low""#)
                .replacingOccurrences(of: #""nested":[true,null]}}"#, with: #""nested":[true,null]},"retry_count":0}"#))
        let removed = payload.editing(set: [], remove: ["bid"])
        XCTAssertEqual(removed.text, sample.replacingOccurrences(of: #","bid":"b-1""#, with: ""))
        XCTAssertNil(removed["bid"])
    }

    func testEditHandlesWhitespaceAndEscapedKeys() throws {
        let text = "{ \"a\\\"b\" : 1 ,\n \"c\":[ 1, 2 ] }"
        let payload = try JobPayload(raw: Array(text.utf8))
        XCTAssertEqual(payload.keys, ["a\"b", "c"])
        let edited = payload.editing(set: [("c", "3")])
        XCTAssertEqual(edited["c"], .number(3, text: "3"))
        XCTAssertEqual(edited["a\"b"], .number(1, text: "1"))
    }

    func testRejectsWhatIsNotAJob() {
        XCTAssertThrowsError(try JobPayload(raw: Array("not json".utf8)))
        XCTAssertThrowsError(try JobPayload(raw: Array("[1,2]".utf8)))
        XCTAssertThrowsError(try JobPayload(raw: Array("{\"a\":1".utf8)))
        XCTAssertThrowsError(try JobPayload(raw: Array("{\"a\":1} x".utf8)))
        XCTAssertThrowsError(try JobPayload(raw: Array("{\"a\":\"\u{01}\"}".utf8)))
        XCTAssertThrowsError(try JobPayload(raw: Array("{\"args\":[],\"jid\":\"x\"}".utf8)).validate()) { error in
            XCTAssertTrue("\(error)".contains("class"))
        }
        XCTAssertThrowsError(try JobPayload(raw: Array("{\"class\":\"A\",\"args\":{}}".utf8)).validate()) { error in
            XCTAssertTrue("\(error)".contains("args"))
        }
        XCTAssertThrowsError(try JobPayload(raw: Array("{\"class\":7,\"args\":[]}".utf8)).validate())
    }

    func testDecodesEscapesAndUnicode() throws {
        let value = try JSONReader.parse(#"{"s":"a\nb\u00e9\ud83d\ude00\"\\","n":-1.5e3,"i":42}"#)
        XCTAssertEqual(value["s"], .string("a\nbé😀\"\\"))
        XCTAssertEqual(value["n"]?.doubleValue, -1500)
        XCTAssertEqual(value["i"]?.intValue, 42)
        XCTAssertTrue(value["i"]!.isIntegerLiteral)
        XCTAssertFalse(value["n"]!.isIntegerLiteral)
    }

    func testWriterEscapesLikeRuby() {
        XCTAssertEqual(JSONWriter.string("a\"b\\c\nd\u{01}"), #""a\"b\\c\nd\u0001""#)
        XCTAssertEqual(JSONWriter.float(1700000000), "1700000000.0")
        XCTAssertEqual(JSONWriter.float(1.5), "1.5")
    }

    func testTenantAndDisplayClass() throws {
        let aj = try JobPayload(
            raw: Array(#"{"class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"MyJob","args":[],"tags":["acme"]}"#.utf8))
        XCTAssertEqual(aj.displayClass, "MyJob")
        XCTAssertEqual(aj.tenant, "acme")
    }

    /// What Ruby's JSON parser refuses of what courier reads: deeper than 100, a lone surrogate.
    func testRubyReadableFindsWhatRubysParserRefuses() {
        func readable(_ text: String) -> Bool { RubyJSONCheck.rubyReadable(Array(text.utf8)) }
        let deep = { (n: Int) in String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        XCTAssertTrue(readable(#"{"class":"A","args":[1,"\u00e9\ud83d\ude00"]}"#), "a surrogate pair is fine")
        XCTAssertTrue(readable(#"{"args":"[[[[ \" {{{"}"#), "brackets in strings do not nest")
        XCTAssertTrue(readable(#"{"a":"# + deep(99) + "}"), "100 levels with the object")
        XCTAssertFalse(readable(#"{"a":"# + deep(100) + "}"), "101 levels")
        XCTAssertFalse(readable(#"{"args":["\ud800"]}"#), "a lone high surrogate")
        XCTAssertFalse(readable(#"{"args":["\ud800\u0041"]}"#), "a high surrogate before a non-surrogate")
        XCTAssertFalse(readable(#"{"args":["\udc00x"]}"#), "a lone low surrogate")
        XCTAssertTrue(readable(#"{"args":["\\ud800"]}"#), "an escaped backslash, not an escape")
    }
}
