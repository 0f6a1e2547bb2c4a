// Sidekiq's retry timing and encodings (sidekiq-compat §4): the delay
// formula, the retry count limit, and the compressed backtrace field.
import CZlib

/// Sidekiq's retry timing and encodings (sidekiq-compat §4).
public enum RetrySchedule {
    /// Sidekiq's default maximum of retries for `retry: true`.
    public static let defaultMaxRetries = 25

    /// Seconds until the next attempt after failure number `count` (0-based),
    /// as Sidekiq 6.4.1 computes it: `count⁴ + 15 + rand(10) × (count + 1)`;
    /// a job's own `sidekiq_retry_in` answer (> 0) replaces `count⁴ + 15`.
    public static func delay(count: Int, customSeconds: Int? = nil, jitter: Int = Int.random(in: 0..<10)) -> Int {
        let jitterSeconds = jitter * (count + 1)
        if let custom = customSeconds, custom > 0 { return custom + jitterSeconds }
        // count is bounded by the retry limit; clamp anyway so a huge limit cannot overflow.
        let c = min(count, 10_000)
        return c * c * c * c + 15 + jitterSeconds
    }

    /// `error_backtrace` as Sidekiq 6.4–7.0 writes it:
    /// Base64 (60-char lines) of zlib-deflated JSON of the lines.
    public static func compressBacktrace(_ lines: [String]) -> String {
        let json = Array(JSONWriter.array(lines).utf8)
        var destinationLength = compressBound(uLong(json.count))
        var compressed = [UInt8](repeating: 0, count: Int(destinationLength))
        let status = json.withUnsafeBufferPointer { source in
            compress2(&compressed, &destinationLength, source.baseAddress, uLong(json.count), Z_DEFAULT_COMPRESSION)
        }
        guard status == Z_OK else { return "" }
        return base64Lines(Array(compressed.prefix(Int(destinationLength))))
    }

    /// Ruby's `Base64.encode64`: a newline after every 60 characters and at the end.
    static func base64Lines(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var column = 0
        var i = 0
        while i < bytes.count {
            let chunk = bytes[i..<min(i + 3, bytes.count)]
            let b0 = chunk[chunk.startIndex]
            let b1 = chunk.count > 1 ? chunk[chunk.startIndex + 1] : 0
            let b2 = chunk.count > 2 ? chunk[chunk.startIndex + 2] : 0
            let quad = [b0 >> 2, (b0 & 3) << 4 | b1 >> 4, (b1 & 15) << 2 | b2 >> 6, b2 & 63]
            for (k, index) in quad.enumerated() {
                out.append(k <= chunk.count ? alphabet[Int(index)] : UInt8(ascii: "="))
            }
            column += 4
            if column == 60 { out.append(10); column = 0 }
            i += 3
        }
        if column > 0 { out.append(10) }
        return String(decoding: out, as: UTF8.self)
    }
}
