// libFuzzer entry point for courier's byte-preserving payload reader
// (Sources/SidekiqModel/JSON.swift, JobPayload.swift). Besides "no crash, no
// memory error" (AddressSanitizer), every input checks the properties
// courier relies on; a violation is a fatalError, which libFuzzer reports
// as a crash with the input saved:
//
//  1. JobPayload(raw:) (the index courier builds of every fetched job)
//     accepts exactly the inputs JSONReader.parse reads as an object, with
//     the same keys in the same order and the same decoded values;
//  2. editing (what courier does to write error fields) yields a valid
//     payload that has the new values, lacks the removed keys, and keeps
//     every other member byte for byte;
//  3. JSONWriter.string output reads back as the same string.
import SidekiqModel

// SwiftPM links a debug executable with main = <module>_main (for testable
// executables); with -parse-as-library there is none, so this is it: hand
// control to libFuzzer's driver (libFuzzer's own main is then not linked).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("FuzzPayload_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = argv
    return runFuzzerDriver(&count, &vector) { data, size in fuzzPayload(data, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPayload(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let parsed = try? JSONReader.parse(bytes)

    guard let payload = try? JobPayload(raw: bytes) else {
        if case .object? = parsed { fatalError("JobPayload refused an object JSONReader.parse accepts") }
        return 0
    }
    guard case let .object(members)? = parsed else { fatalError("JobPayload indexed bytes JSONReader.parse refuses") }
    guard payload.keys == members.map(\.0) else { fatalError("keys differ: \(payload.keys) vs \(members.map(\.0))") }
    for key in Set(payload.keys) {
        let last = members.last { $0.0 == key }?.1
        guard payload[key] == last else { fatalError("value of \(key) differs") }
    }

    // What courier reads of every job.
    _ = try? payload.validate()
    _ = (payload.jid, payload.className, payload.queue, payload.tenant, payload.displayClass)
    _ = payload.metricsClass(displayClass: payload.displayClass)
    _ = (payload["retry_count"]?.intValue, payload["retry"]?.isIntegerLiteral, payload["enqueued_at"]?.doubleValue)

    // What courier writes on a failure: replaced, appended and removed members.
    let message = String(decoding: bytes.prefix(80), as: UTF8.self)
    let written = JSONWriter.string(message)
    guard (try? JSONReader.parse(written))?.stringValue == message else { fatalError("JSONWriter.string does not read back") }
    let changes: [(String, String)] = [("retry_count", "7"), ("error_message", written), ("fuzz_added", "[1,\"x\"]")]
    let removed: Set<String> = ["jid"]
    let edited = payload.editing(set: changes, remove: removed)
    guard (try? JobPayload(raw: edited.raw)) != nil else { fatalError("edited payload does not parse") }
    guard edited["retry_count"]?.intValue == 7, edited["error_message"]?.stringValue == message,
        edited["fuzz_added"]?.arrayValue?.count == 2, edited["jid"] == nil
    else {
        fatalError("edited payload lacks the edits: \(edited.text.prefix(300))")
    }
    let touched = Set(changes.map(\.0)).union(removed)
    for key in Set(payload.keys) where !touched.contains(key) {
        guard edited.rawValue(of: key) == payload.rawValue(of: key) else { fatalError("member \(key) not kept byte for byte") }
    }
    return 0
}
