// libFuzzer entry point for courier's reading of executor answers
// (Sources/ExecutorProtocol/ExecutionOutcome.swift): whatever an executor
// answers (a buggy one, a proxy in between, a job's own hook values such as
// sidekiq_retry_in), classifying it must not crash the dispatcher.
// Input: byte 0 picks the HTTP status, byte 1 the batch size, the rest is
// the body; the first 16 body bytes double as a Retry-After header. The body
// is also read as a streamed answer (/v1/jobs/stream lines, StreamAnswer.swift).
import ExecutorProtocol
import SidekiqModel

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("FuzzAnswer_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = argv
    return runFuzzerDriver(&count, &vector) { data, size in fuzzAnswer(data, size) }
}

let statuses = [422, 200, 400, 409, 413, 401, 429, 503, 500, 404]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAnswer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let status = statuses[Int(bytes.first ?? 0) % statuses.count]
    let batch = 1 + Int(bytes.count > 1 ? bytes[1] % 8 : 0)
    let body = Array(bytes.dropFirst(min(2, bytes.count)))
    let retryAfter = String(decoding: body.prefix(16), as: UTF8.self)
    _ = OutcomeClassifier.classify(status: status, body: body, retryAfter: nil)
    _ = OutcomeClassifier.classify(status: status, body: body, retryAfter: retryAfter)
    let outcomes = OutcomeClassifier.batchOutcomes(
        of: .response(status: 200, body: body, retryAfter: nil), count: batch,
        jobTimeout: .seconds(600))
    guard outcomes.count == batch else { fatalError("batchOutcomes gave \(outcomes.count) outcomes for \(batch) jobs") }
    _ = OutcomeClassifier.batchOutcomes(
        of: .response(status: status, body: body, retryAfter: retryAfter), count: batch,
        jobTimeout: .seconds(600))
    // The same bytes as a streamed answer, split into lines at a boundary the input picks.
    var splitter = LineSplitter(maxLineBytes: 256)
    let cut = batch * 7 % (body.count + 1)
    for part in [body[..<cut], body[cut...]] {
        Array(part).withUnsafeBytes { raw in
            splitter.feed(raw) { line in
                if case let .job(index, _) = StreamProtocol.read(line: line), index < 0 { fatalError("negative index \(index)") }
            }
        }
    }
    _ = StreamProtocol.unanswered(
        result: .response(status: status, body: body, retryAfter: retryAfter), complete: batch % 2 == 0,
        jobTimeout: .seconds(600))
    return 0
}
