import Protocol

// An immutable run of bytes with a stable address, shared by reference: a frame encoded once
// can sit in many connections' output queues (and on several loops) without being copied.
// One allocation: the bytes live in the object's own tail (ManagedBuffer), not in a second
// block it points to, so an ack or an echo costs one malloc and one free, not two of each.
// Shared across threads (a publication's frame reaches every loop) though Swift cannot call it
// Sendable (ManagedBuffer refuses the conformance): the memory is written only while it is
// made and never after, and the reference count is atomic.
public final class Bytes: ManagedBuffer<Int, UInt8> {
    /// Allocates `count` bytes and lets `fill` write them (it must write all of them).
    public static func make(count: Int, fill: (UnsafeMutableRawPointer) -> Void) -> Bytes {
        let made = unsafeDowncast(Bytes.create(minimumCapacity: max(count, 1)) { _ in count }, to: Bytes.self)
        fill(made.base)
        return made
    }

    public static func copy(_ bytes: UnsafeRawBufferPointer) -> Bytes {
        make(count: bytes.count) { dst in
            if let src = bytes.baseAddress, bytes.count > 0 { dst.copyMemory(from: src, byteCount: bytes.count) }
        }
    }

    public static func copy(_ bytes: [UInt8]) -> Bytes {
        bytes.withUnsafeBytes { copy($0) }
    }

    /// The bytes' length (the header of the buffer).
    public var count: Int { header }

    /// Where the bytes start; stable for the object's life (they are part of it).
    public var base: UnsafeMutableRawPointer {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) }
    }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

extension Bytes {
    /// A whole unmasked frame written straight into one allocation: the header, then the payload.
    static func frame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer, rsv1: Bool = false) -> Bytes {
        make(count: FrameEncoder.headerSize(payloadLength: payload.count) + payload.count) { dst in
            let h = FrameEncoder.writeHeader(opcode: opcode, rsv1: rsv1, payloadLength: payload.count, into: dst)
            if let src = payload.baseAddress, payload.count > 0 { (dst + h).copyMemory(from: src, byteCount: payload.count) }
        }
    }

    static func frame(_ opcode: Opcode, _ payload: [UInt8]) -> Bytes {
        payload.withUnsafeBytes { frame(opcode, $0) }
    }
}
