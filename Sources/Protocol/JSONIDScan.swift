// Finds a request's top-level integer "id" without parsing the request: one forward pass, no
// allocation, bounded by the input's length. Used where the hub answers a request it will not
// parse (over the op rate, over the envelope limit, invalid JSON), so the error reply still
// carries the id a client matches replies by.

public enum JSONIDScan {
    /// The integer value of the first top-level `"id"` key of the JSON object in `bytes`, or nil
    /// when the input is not an object, has no such key before it stops being valid JSON, or the
    /// value is not an integer that fits in Int64. Nested objects and arrays are skipped (their
    /// `"id"` keys do not count); a key written with escapes is not matched.
    /// Only the first `limit` bytes are looked at (the rest of a frame over the envelope limit
    /// is not: the scan's cost stays bounded by the limit, not by the frame).
    public static func topLevelID(_ bytes: UnsafeRawBufferPointer, limit: Int = .max) -> Int64? {
        var s = Scanner(bytes: UnsafeRawBufferPointer(rebasing: bytes.prefix(limit)))
        s.skipSpace()
        guard s.take(UInt8(ascii: "{")) else { return nil }
        while true {
            s.skipSpace()
            guard let isID = s.key() else { return nil }
            s.skipSpace()
            guard s.take(UInt8(ascii: ":")) else { return nil }
            s.skipSpace()
            if isID { return s.integer() }
            guard s.skipValue() else { return nil }
            s.skipSpace()
            guard s.take(UInt8(ascii: ",")) else { return nil }
        }
    }

    public static func topLevelID(_ bytes: [UInt8], limit: Int = .max) -> Int64? {
        bytes.withUnsafeBytes { topLevelID($0, limit: limit) }
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var i = 0

        var current: UInt8? { i < bytes.count ? bytes[i] : nil }

        mutating func take(_ b: UInt8) -> Bool {
            guard current == b else { return false }
            i += 1
            return true
        }

        mutating func skipSpace() {
            while let b = current, b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { i += 1 }
        }

        /// Reads a key string; true when it is exactly `id`, nil when there is no string here.
        mutating func key() -> Bool? {
            let start = i + 1
            guard skipString() else { return nil }
            let end = i - 1 // the closing quote
            return end - start == 2 && bytes[start] == UInt8(ascii: "i") && bytes[start + 1] == UInt8(ascii: "d")
        }

        /// Skips a string from its opening quote to just past its closing quote.
        mutating func skipString() -> Bool {
            guard take(UInt8(ascii: "\"")) else { return false }
            while let b = current {
                i += 1
                if b == UInt8(ascii: "\\") {
                    guard current != nil else { return false }
                    i += 1
                } else if b == UInt8(ascii: "\"") {
                    return true
                } else if b < 0x20 {
                    return false
                }
            }
            return false
        }

        /// Skips one value: a string, a nested object or array (by depth, strings skipped whole),
        /// or a literal or number (up to the next delimiter). Does not check the value's grammar.
        mutating func skipValue() -> Bool {
            guard let b = current else { return false }
            if b == UInt8(ascii: "\"") { return skipString() }
            if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") {
                var depth = 0
                while let c = current {
                    switch c {
                    case UInt8(ascii: "\""):
                        guard skipString() else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { i += 1; return true }
                    default:
                        break
                    }
                    i += 1
                }
                return false
            }
            let start = i
            while let c = current, !isDelimiter(c) { i += 1 }
            return i > start
        }

        /// An integer followed by a delimiter (so `1.5` and `1e3` are not integers).
        mutating func integer() -> Int64? {
            let negative = take(UInt8(ascii: "-"))
            var value: Int64 = 0
            var digits = 0
            while let c = current, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                let digit = Int64(c - UInt8(ascii: "0"))
                // Accumulate negatively so Int64.min fits.
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (n, o2) = m.subtractingReportingOverflow(digit)
                guard !o1, !o2 else { return nil }
                value = n
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits > 1, bytes[i - digits] == UInt8(ascii: "0") { return nil } // leading zero
            // A delimiter must follow: at the end of the input the number may have been cut.
            guard let c = current, isDelimiter(c) else { return nil }
            if negative { return value }
            guard value != Int64.min else { return nil }
            return -value
        }

        func isDelimiter(_ c: UInt8) -> Bool {
            c == UInt8(ascii: ",") || c == UInt8(ascii: "}") || c == UInt8(ascii: "]")
                || c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
        }
    }
}
