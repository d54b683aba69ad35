import Protocol

// An immutable run of bytes with a stable address, shared by reference: a frame encoded once
// can sit in many connections' output queues (and on several loops) without being copied.
// One allocation: the bytes live in the object's own tail (ManagedBuffer), not in a second
// block it points to, so an ack or an echo costs one malloc and one free, not two of each.
// Shared across threads (a publication's frame reaches every loop) though Swift cannot call it
// Sendable (ManagedBuffer refuses the conformance): the memory is written only while it is
// made and never after, and the reference count is atomic. The one exception is a connection's
// own run (`OutputQueue.appendOwnFrame`), which only its queue ever holds: it grows at its end
// while it waits to be written.
public final class Bytes: ManagedBuffer<BytesHeader, UInt8> {
    /// Allocates `count` bytes and lets `fill` write them (it must write all of them).
    public static func make(count: Int, fill: (UnsafeMutableRawPointer) -> Void) -> Bytes {
        make(capacity: count, count: count, fill: fill)
    }

    /// Allocates room for at least `capacity` bytes, of which `fill` writes the first `count`.
    static func make(capacity: Int, count: Int, fill: (UnsafeMutableRawPointer) -> Void) -> Bytes {
        precondition(count <= capacity && count <= Int(Int32.max), "a run of bytes over its capacity or over 2 GiB")
        let made = unsafeDowncast(Bytes.create(minimumCapacity: max(capacity, 1)) { _ in
            BytesHeader(count: Int32(count), frames: 1)
        }, to: Bytes.self)
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

    /// The bytes' length.
    public var count: Int { Int(header.count) }

    /// The WebSocket frames the bytes hold: 1, or more for a connection's own run.
    var frames: Int { Int(header.frames) }

    /// Adds one frame of `count` bytes that `fill` writes after the present bytes. Only for a
    /// run one queue owns, with the room checked by the caller.
    func appendFrame(count: Int, fill: (UnsafeMutableRawPointer) -> Void) {
        fill(base + Int(header.count))
        header.count += Int32(count)
        header.frames += 1
    }

    /// Where the bytes start; stable for the object's life (they are part of it).
    public var base: UnsafeMutableRawPointer {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0) }
    }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// A run's length and how many frames it holds, in the 8 bytes an Int length took.
public struct BytesHeader {
    var count: Int32
    var frames: Int32
}

extension Bytes {
    /// A whole unmasked frame written straight into one allocation: the header, then the payload.
    static func frame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer, rsv1: Bool = false) -> Bytes {
        make(count: frameSize(payload.count)) { writeFrame(opcode, payload, rsv1: rsv1, into: $0) }
    }

    /// The bytes of an unmasked frame carrying `payloadLength` bytes.
    static func frameSize(_ payloadLength: Int) -> Int {
        FrameEncoder.headerSize(payloadLength: payloadLength) + payloadLength
    }

    /// Writes an unmasked frame, its header then its payload, at `dst` (`frameSize` bytes).
    static func writeFrame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer, rsv1: Bool, into dst: UnsafeMutableRawPointer) {
        let h = FrameEncoder.writeHeader(opcode: opcode, rsv1: rsv1, payloadLength: payload.count, into: dst)
        if let src = payload.baseAddress, payload.count > 0 { (dst + h).copyMemory(from: src, byteCount: payload.count) }
    }

    static func frame(_ opcode: Opcode, _ payload: [UInt8]) -> Bytes {
        payload.withUnsafeBytes { frame(opcode, $0) }
    }
}
