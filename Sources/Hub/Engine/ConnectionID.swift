import Protocol

/// A connection's address across threads: its loop, slot and the slot's generation (a stale
/// id never reaches a newer connection that reused the slot).
struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    let loop: Int
    let slot: Int32
    let generation: UInt32
    /// `loop.slot.generation`, written on the stack and made a String at its length (inline up
    /// to 15 bytes): every connect names its session with it, and interpolation used the heap.
    var description: String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buffer in
            var n = 0
            func put(_ v: Int64) {
                DecimalText.withDigits(v) { digits in
                    for d in digits { buffer[n] = d; n += 1 }
                }
            }
            put(Int64(loop))
            buffer[n] = UInt8(ascii: "."); n += 1
            put(Int64(slot))
            buffer[n] = UInt8(ascii: "."); n += 1
            put(Int64(generation))
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[..<n]), as: UTF8.self)
        }
    }
}
