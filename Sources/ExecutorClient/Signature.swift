// The request signature both sides compute: an HMAC-SHA256 over the
// timestamp and the body with the shared secret (OpenSSL's libcrypto).
import CCrypto

/// The protocol's request signature:
/// `Courier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
public struct RequestSigner: Sendable {
    private let secret: [UInt8]

    public init(secret: [UInt8]) { self.secret = secret }

    /// The header value for `body` signed at unix time `timestamp`.
    public func headerValue(body: [UInt8], timestamp: Int) -> String {
        let prefix = Array("\(timestamp).".utf8)
        var message = prefix
        message.append(contentsOf: body)
        return "t=\(timestamp),v1=" + Self.hex(hmacSHA256(key: secret, message: message))
    }

    public func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        key.withUnsafeBufferPointer { k in
            message.withUnsafeBufferPointer { m in
                _ = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.baseAddress, m.count, &digest, &length)
            }
        }
        return digest
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
