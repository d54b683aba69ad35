// Client-to-server payloads are XOR-masked with a 4-byte key (RFC 6455 §5.3). Unmasking runs
// in place, a machine word at a time, continuing the key rotation across partial reads.
@inlinable
public func unmask(_ base: UnsafeMutableRawPointer, count: Int, key: UInt32, offset: Int) {
    // `key` holds the four key bytes in wire order as loaded from memory (native layout).
    let shift = UInt32((offset & 3) * 8)
    // Rotate so that byte 0 of the rotated key lines up with `base`.
    let rotated = shift == 0 ? key : (key >> shift) | (key << (32 - shift))
    let wide = UInt64(rotated) | (UInt64(rotated) << 32)
    var i = 0
    while i + 8 <= count {
        let v = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
        base.storeBytes(of: v ^ wide, toByteOffset: i, as: UInt64.self)
        i += 8
    }
    var k = rotated
    while i < count {
        let b = base.load(fromByteOffset: i, as: UInt8.self)
        base.storeBytes(of: b ^ UInt8(truncatingIfNeeded: k), toByteOffset: i, as: UInt8.self)
        k = (k >> 8) | (k << 24)
        i += 1
    }
}
