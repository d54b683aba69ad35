// Server-to-client frame encoding (unmasked, RFC 6455 §5.2). Pure: payload in, bytes out.
public enum FrameEncoder {
    /// Bytes a server frame header takes for a payload of `length` bytes.
    @inlinable
    public static func headerSize(payloadLength length: Int) -> Int {
        length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
    }

    /// Writes a header into `out` (at least 10 bytes) and returns its size.
    @inlinable
    public static func writeHeader(opcode: Opcode, fin: Bool = true, rsv1: Bool = false,
                                   payloadLength length: Int,
                                   into out: UnsafeMutableRawPointer) -> Int {
        var b0 = opcode.rawValue
        if fin { b0 |= 0x80 }
        if rsv1 { b0 |= 0x40 }
        out.storeBytes(of: b0, as: UInt8.self)
        if length < 126 {
            out.storeBytes(of: UInt8(length), toByteOffset: 1, as: UInt8.self)
            return 2
        } else if length <= 0xFFFF {
            out.storeBytes(of: 126, toByteOffset: 1, as: UInt8.self)
            out.storeBytes(of: UInt16(length).bigEndian, toByteOffset: 2, as: UInt16.self)
            return 4
        } else {
            out.storeBytes(of: 127, toByteOffset: 1, as: UInt8.self)
            out.storeBytes(of: UInt64(length).bigEndian, toByteOffset: 2, as: UInt64.self)
            return 10
        }
    }

    /// A whole frame as one array.
    public static func frame(opcode: Opcode, payload: UnsafeRawBufferPointer, fin: Bool = true,
                             rsv1: Bool = false) -> [UInt8] {
        let header = headerSize(payloadLength: payload.count)
        return [UInt8](unsafeUninitializedCapacity: header + payload.count) { buf, initialized in
            let base = UnsafeMutableRawPointer(buf.baseAddress!)
            let h = writeHeader(opcode: opcode, fin: fin, rsv1: rsv1, payloadLength: payload.count, into: base)
            if let src = payload.baseAddress, payload.count > 0 {
                (base + h).copyMemory(from: src, byteCount: payload.count)
            }
            initialized = h + payload.count
        }
    }

    public static func frame(opcode: Opcode, payload: [UInt8], fin: Bool = true, rsv1: Bool = false) -> [UInt8] {
        payload.withUnsafeBytes { frame(opcode: opcode, payload: $0, fin: fin, rsv1: rsv1) }
    }

    /// A close frame; the reason is cut on a UTF-8 boundary to fit the 125-byte control limit.
    public static func closeFrame(code: CloseCode?, reason: String = "") -> [UInt8] {
        guard let code else { return frame(opcode: .close, payload: []) }
        var payload: [UInt8] = [UInt8(code.rawValue >> 8), UInt8(code.rawValue & 0xFF)]
        var reasonBytes = Array(reason.utf8)
        if reasonBytes.count > 123 {
            var cut = 123
            while cut > 0 && (reasonBytes[cut] & 0xC0) == 0x80 { cut -= 1 }
            reasonBytes.removeSubrange(cut...)
        }
        payload.append(contentsOf: reasonBytes)
        return frame(opcode: .close, payload: payload)
    }
}
