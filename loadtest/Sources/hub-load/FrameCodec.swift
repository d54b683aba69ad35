// Client-side WebSocket framing (RFC 6455 §5): frames we send are masked; frames the server
// sends must not be. No extensions are offered, so RSV bits must be clear.
enum FrameCodec {
    static let text: UInt8 = 0x1
    static let binary: UInt8 = 0x2
    static let continuation: UInt8 = 0x0
    static let close: UInt8 = 0x8
    static let ping: UInt8 = 0x9
    static let pong: UInt8 = 0xA

    /// Largest server message we accept (fragments joined).
    static let maxMessage = 16 << 20

    /// Appends one final, masked frame to `out`.
    static func appendMasked(opcode: UInt8, _ payload: UnsafeRawBufferPointer, mask: UInt32, into out: inout [UInt8]) {
        let n = payload.count
        out.append(0x80 | opcode)
        if n < 126 {
            out.append(0x80 | UInt8(n))
        } else if n <= 0xFFFF {
            out.append(0x80 | 126)
            out.append(UInt8(n >> 8))
            out.append(UInt8(n & 0xFF))
        } else {
            out.append(0x80 | 127)
            for i in (0..<8).reversed() { out.append(UInt8(truncatingIfNeeded: n >> (8 * i))) }
        }
        let keyBytes = mask.bigEndian
        withUnsafeBytes(of: keyBytes) { k in
            out.append(contentsOf: k)
            let start = out.count
            out.append(contentsOf: payload)
            out.withUnsafeMutableBufferPointer { b in
                for i in 0..<n { b[start + i] ^= k[i & 3] }
            }
        }
    }

    struct Header {
        var fin: Bool
        var opcode: UInt8
        var headerLength: Int
        var payloadLength: Int
    }

    enum HeaderResult {
        case needMore
        case frame(Header)
        case invalid(String)
    }

    /// Reads the frame header at the start of `b`.
    @inline(__always)
    static func header(_ b: UnsafeRawBufferPointer) -> HeaderResult {
        guard b.count >= 2 else { return .needMore }
        let b0 = b[0], b1 = b[1]
        if b0 & 0x70 != 0 { return .invalid("RSV bits set without an extension") }
        if b1 & 0x80 != 0 { return .invalid("server frame is masked") }
        let opcode = b0 & 0x0F
        var length = Int(b1 & 0x7F)
        var headerLength = 2
        if length == 126 {
            guard b.count >= 4 else { return .needMore }
            length = Int(b[2]) << 8 | Int(b[3])
            headerLength = 4
        } else if length == 127 {
            guard b.count >= 10 else { return .needMore }
            var v: UInt64 = 0
            for i in 2..<10 { v = v << 8 | UInt64(b[i]) }
            guard v <= UInt64(maxMessage) else { return .invalid("frame of \(v) bytes") }
            length = Int(v)
            headerLength = 10
        }
        if opcode >= 0x8 && (length > 125 || b0 & 0x80 == 0) { return .invalid("bad control frame") }
        return .frame(Header(fin: b0 & 0x80 != 0, opcode: opcode, headerLength: headerLength, payloadLength: length))
    }
}
