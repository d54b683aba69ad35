// Base64 (RFC 4648), both alphabets in one place: the URL-safe one of JWTs (§5, unpadded) and
// the standard one of the WebSocket handshake's key and accept value (§4, padded). One encoder
// serves both.

/// Base64 with the URL and filename safe alphabet (RFC 4648 §5), as JWTs use it.
public enum Base64URL {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Sextet value of each byte, 0xFF for bytes outside the alphabet.
    private static let values = sextetValues(alphabet)

    /// Unpadded.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        bytes.withUnsafeBytes { appendBase64($0, alphabet: alphabet, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ s: String) -> [UInt8]? { decode(bytes: Array(s.utf8)[...]) }

    public static func decode(_ s: Substring) -> [UInt8]? { decode(bytes: Array(s.utf8)[...]) }

    /// Optional `=` padding is accepted (then the length must be a multiple of 4). Refused:
    /// bytes outside the alphabet (including `+` and `/` of plain base64), a length that
    /// leaves one character over (it cannot hold a whole byte), and unused low bits that are
    /// not zero, so each byte string has exactly one encoding.
    static func decode(bytes input: ArraySlice<UInt8>) -> [UInt8]? {
        input.withUnsafeBufferPointer { input in
            var failed = false
            let out = [UInt8](unsafeUninitializedCapacity: maxDecodedCount(input.count)) { out, count in
                guard let n = decode(input, into: UnsafeMutableRawBufferPointer(out)) else { failed = true; return }
                count = n
            }
            return failed ? nil : out
        }
    }

    /// The most bytes `count` characters decode to.
    static func maxDecodedCount(_ count: Int) -> Int { count * 3 / 4 }

    /// `decode(bytes:)` into `out`, which holds at least `maxDecodedCount(input.count)` bytes:
    /// the number of bytes written, nil when `input` is not base64url. No allocation, for the
    /// parts of a JWT verified on every connect.
    static func decode(_ input: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableRawBufferPointer) -> Int? {
        var bodyCount = input.count
        while bodyCount > 0, input[bodyCount - 1] == UInt8(ascii: "=") { bodyCount -= 1 }
        let padding = input.count - bodyCount
        if padding > 0 {
            guard padding <= 2, input.count % 4 == 0 else { return nil }
        }
        let remainder = bodyCount % 4
        guard remainder != 1 else { return nil }
        if padding > 0, (4 - remainder) % 4 != padding { return nil }
        precondition(out.count >= maxDecodedCount(bodyCount), "Base64URL.decode: output buffer too small")

        let values = values // read once: a static read in the loop is a lazy-global check a byte
        var written = 0
        var accumulator: UInt32 = 0
        var bits = 0
        for c in input[..<bodyCount] {
            let v = values[Int(c)]
            guard v != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out[written] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                written += 1
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        // What is left (2 or 4 bits) is the unused tail of the last character: must be zero.
        guard accumulator == 0 else { return nil }
        return written
    }
}

/// Base64 with the standard alphabet (RFC 4648 §4), padded: the WebSocket handshake's.
enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values = sextetValues(alphabet)

    /// Whether `c` is one of the alphabet's 64 characters (`=` is not).
    static func isAlphabetByte(_ c: UInt8) -> Bool { values[Int(c)] != 0xFF }

    /// The padded encoding of `bytes`, appended to `out`.
    static func appendPadded(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let start = out.count
        appendBase64(bytes, alphabet: alphabet, to: &out)
        while (out.count - start) % 4 != 0 { out.append(UInt8(ascii: "=")) }
    }
}

/// Each byte's sextet value in `alphabet`, 0xFF for bytes outside it.
private func sextetValues(_ alphabet: [UInt8]) -> [UInt8] {
    var table = [UInt8](repeating: 0xFF, count: 256)
    for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
    return table
}

/// `bytes` in `alphabet`, unpadded, appended to `out`.
private func appendBase64(_ bytes: UnsafeRawBufferPointer, alphabet: [UInt8], to out: inout [UInt8]) {
    var i = 0
    while i + 3 <= bytes.count {
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
        out.append(alphabet[Int(n >> 18 & 0x3F)])
        out.append(alphabet[Int(n >> 12 & 0x3F)])
        out.append(alphabet[Int(n >> 6 & 0x3F)])
        out.append(alphabet[Int(n & 0x3F)])
        i += 3
    }
    switch bytes.count - i {
    case 1:
        let n = UInt32(bytes[i]) << 16
        out.append(alphabet[Int(n >> 18 & 0x3F)])
        out.append(alphabet[Int(n >> 12 & 0x3F)])
    case 2:
        let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
        out.append(alphabet[Int(n >> 18 & 0x3F)])
        out.append(alphabet[Int(n >> 12 & 0x3F)])
        out.append(alphabet[Int(n >> 6 & 0x3F)])
    default:
        break
    }
}
