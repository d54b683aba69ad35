// An integer written as decimal text without building a String for it: JSON numbers, and ids
// written on every connect.
public enum DecimalText {
    /// `v`'s digits, with a `-` before a negative one, written from the right into 24 bytes on
    /// the stack (Int64.min takes 20) and handed to `body`.
    @inlinable
    public static func withDigits<R>(_ v: Int64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var magnitude = v.magnitude
        return withUnsafeMutableBytes(of: &digits) { buffer in
            var p = buffer.count
            repeat {
                p -= 1
                buffer[p] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if v < 0 {
                p -= 1
                buffer[p] = UInt8(ascii: "-")
            }
            return body(UnsafeRawBufferPointer(rebasing: buffer[p...]))
        }
    }
}
