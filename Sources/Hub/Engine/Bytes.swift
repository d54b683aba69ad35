import Protocol

// An immutable run of bytes with a stable address, shared by reference: a frame encoded once
// can sit in many connections' output queues (and on several loops) without being copied.
// `@unchecked Sendable`: the memory is written only inside `init` and never after.
public final class Bytes: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let count: Int

    /// Allocates `count` bytes and lets `fill` write them (it must write all of them).
    public init(count: Int, fill: (UnsafeMutableRawPointer) -> Void) {
        self.count = count
        base = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
        fill(base)
    }

    public convenience init(_ bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { dst in
            if let src = bytes.baseAddress, bytes.count > 0 { dst.copyMemory(from: src, byteCount: bytes.count) }
        }
    }

    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count) { dst in
            bytes.withUnsafeBytes { src in
                if let s = src.baseAddress, src.count > 0 { dst.copyMemory(from: s, byteCount: src.count) }
            }
        }
    }

    deinit { base.deallocate() }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

extension Bytes {
    /// A whole unmasked frame written straight into one allocation: the header, then the payload.
    static func frame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer, rsv1: Bool = false) -> Bytes {
        Bytes(count: FrameEncoder.headerSize(payloadLength: payload.count) + payload.count) { dst in
            let h = FrameEncoder.writeHeader(opcode: opcode, rsv1: rsv1, payloadLength: payload.count, into: dst)
            if let src = payload.baseAddress, payload.count > 0 { (dst + h).copyMemory(from: src, byteCount: payload.count) }
        }
    }

    static func frame(_ opcode: Opcode, _ payload: [UInt8]) -> Bytes {
        payload.withUnsafeBytes { frame(opcode, $0) }
    }
}
