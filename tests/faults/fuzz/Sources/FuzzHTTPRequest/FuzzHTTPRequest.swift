// libFuzzer entry point for the ops server's request parser
// (Sources/MiniHTTP/HTTPRequestParser.swift): whatever a client sends to the
// ops port (a port scanner, TLS to a plain port, a smuggling attempt), the
// parser must not crash, and the server's loop must be able to trust its
// answer. The input is the bytes a connection has received; limits are small
// (4 KiB head, 4 KiB body) so the 431 and 413 paths are reached. A violated
// property is a fatalError, which libFuzzer reports with the input saved:
//
//  1. a request takes 0 < consumed ≤ the input's bytes, and its body is the
//     last Content-Length (or 0) of them, byte for byte;
//  2. prefixes agree: parsing just the consumed bytes gives the same request,
//     and any shorter prefix asks for more (never a refusal, never a request),
//     with `atLeast` beyond the prefix and not beyond `consumed`;
//  3. `needMore(atLeast:)` always asks for more than the input holds;
//  4. written back out (request line, headers as "name: value", body), the
//     request parses to the same method, target, version, headers and body.
import MiniHTTP

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("FuzzHTTPRequest_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var vector = argv
    return runFuzzerDriver(&count, &vector) { data, size in fuzzHTTPRequest(data, size) }
}

let limits = HTTPRequestLimits(maxHeadBytes: 4096, maxBodyBytes: 4096)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequest(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    switch HTTPRequestParser.parse(bytes, limits: limits) {
    case .needMore(let atLeast):
        guard atLeast > bytes.count else { fatalError("needMore(atLeast: \(atLeast)) with \(bytes.count) bytes in hand") }
    case .rejected(let error):
        guard [400, 413, 431, 501, 505].contains(error.status) else { fatalError("refused with status \(error.status)") }
    case .request(let request, let consumed):
        check(request, consumed: consumed, in: bytes)
    }
    return 0
}

func check(_ request: HTTPRequest, consumed: Int, in bytes: [UInt8]) {
    // 1. What was consumed, and the body in it.
    guard consumed > 0, consumed <= bytes.count else { fatalError("consumed \(consumed) of \(bytes.count) bytes") }
    let lengths = request.headers.filter { $0.0.lowercased() == "content-length" }.map { Int($0.1)! }
    guard request.body.count == (lengths.last ?? 0), Set(lengths).count <= 1 else {
        fatalError("body of \(request.body.count) bytes for Content-Length \(lengths)")
    }
    guard request.body.count <= limits.maxBodyBytes, Array(bytes[(consumed - request.body.count)..<consumed]) == request.body else {
        fatalError("the body is not the request's last bytes")
    }

    // 2. Prefixes.
    let exact = Array(bytes[0..<consumed])
    guard case .request(let again, consumed) = HTTPRequestParser.parse(exact, limits: limits), same(again, request) else {
        fatalError("the consumed bytes alone parse differently")
    }
    for cut in Set([consumed - 1, consumed / 2, Int(bytes[0]) % consumed]) {
        switch HTTPRequestParser.parse(Array(bytes[0..<cut]), limits: limits) {
        case .needMore(let atLeast):
            guard atLeast > cut, atLeast <= consumed else {
                fatalError("prefix of \(cut) bytes: needMore(atLeast: \(atLeast)), request is \(consumed)")
            }
        case .rejected(let error):
            fatalError("prefix of \(cut) bytes refused (\(error)) where the whole request is accepted")
        case .request(_, let c):
            fatalError("prefix of \(cut) bytes is a request of \(c) bytes, the whole one \(consumed)")
        }
    }

    // 4. Written back out.
    var text = Array("\(request.method) \(request.path) \(request.version)\r\n".utf8)
    for (name, value) in request.headers { text += Array("\(name): \(value)\r\n".utf8) }
    text += Array("\r\n".utf8) + request.body
    // A larger head limit: ": " and invalid UTF-8 decoded to U+FFFD (3 bytes for 1) may lengthen it.
    switch HTTPRequestParser.parse(text, limits: HTTPRequestLimits(maxHeadBytes: 8 * limits.maxHeadBytes, maxBodyBytes: limits.maxBodyBytes)) {
    case .request(let written, text.count) where same(written, request): break
    case let other: fatalError("written back out, the request parses as \(other)")
    }
}

func same(_ a: HTTPRequest, _ b: HTTPRequest) -> Bool {
    a.method == b.method && a.path == b.path && a.version == b.version && a.body == b.body
        && a.headers.count == b.headers.count && zip(a.headers, b.headers).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
}
