// ASCII case rules over bytes, for the places that compare or store text the protocol defines
// as ASCII (HTTP tokens and header names, search terms of ASCII words): one rule, no Unicode
// tables, no intermediate String.
enum ASCII {
    /// `b` lowercased if it is an ASCII capital letter, unchanged otherwise.
    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 {
        b >= 0x41 && b <= 0x5A ? b | 0x20 : b
    }

    /// `bytes` lowercased straight into a String (inline, with no allocation, up to 15 bytes).
    /// Bytes that are not ASCII letters are kept as they are.
    static func lowercased<C: Collection<UInt8>>(_ bytes: C) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { out in
            var k = 0
            for b in bytes { out[k] = lower(b); k += 1 }
            return k
        }
    }
}
