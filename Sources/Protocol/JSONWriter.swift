// Compact JSON written straight into a byte array, without Foundation: the hot path of
// pushes builds its envelopes here, and JSON.serialized() is written with it. Commas come by
// themselves; strings are escaped so the output is also safe inside a JavaScript string.

public struct JSONWriter {
    public private(set) var bytes: [UInt8]

    /// One bit per open container (bit d for depth d < 64): set once the container holds a
    /// member, so the next member needs a comma first. Deeper levels spill into `deepFlags`.
    private var hasMembers: UInt64 = 0
    private var deepFlags: [Bool] = []
    private var depth = 0
    /// A key was just written: its value follows the colon with no comma.
    private var afterKey = false

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Empties the writer for the next document, keeping its buffer.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        hasMembers = 0
        deepFlags.removeAll()
        depth = 0
        afterKey = false
    }

    /// Bytes the buffer holds before it must grow.
    public var capacity: Int { bytes.capacity }

    // MARK: structure

    public mutating func beginObject() { open(UInt8(ascii: "{")) }
    public mutating func endObject() { close(UInt8(ascii: "}")) }
    public mutating func beginArray() { open(UInt8(ascii: "[")) }
    public mutating func endArray() { close(UInt8(ascii: "]")) }

    private mutating func open(_ bracket: UInt8) {
        separate()
        bytes.append(bracket)
        push()
    }

    private mutating func close(_ bracket: UInt8) {
        pop()
        bytes.append(bracket)
    }

    /// An object member's name; the next value written is its value.
    public mutating func key(_ k: String) {
        separate()
        writeString(k)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    // MARK: values

    public mutating func string(_ s: String) {
        separate()
        writeString(s)
    }

    public mutating func int(_ v: Int64) {
        separate()
        writeInteger(v)
    }

    public mutating func int(_ v: Int) {
        int(Int64(v))
    }

    /// Integral values within ±2^53 without a fraction ("3", not "3.0"); others in Swift's
    /// shortest round-trip form; NaN and infinities, which JSON cannot express, as null.
    public mutating func double(_ d: Double) {
        separate()
        if let exact = JSON.exactInteger(d) {
            writeInteger(exact)
        } else if d.isFinite {
            // Swift's description is digits, ".", "e", "+" and "-" for finite values: all of
            // it inside JSON's number grammar ("1e-07", "1.5e+300", "0.1").
            bytes.append(contentsOf: d.description.utf8)
        } else {
            bytes.append(contentsOf: "null".utf8)
        }
    }

    public mutating func bool(_ b: Bool) {
        separate()
        bytes.append(contentsOf: b ? "true".utf8 : "false".utf8)
    }

    public mutating func null() {
        separate()
        bytes.append(contentsOf: "null".utf8)
    }

    /// A whole JSON value, objects in stored key order.
    public mutating func value(_ v: JSON) {
        switch v {
        case .null: null()
        case .bool(let b): bool(b)
        case .int(let n): int(n)
        case .double(let d): double(d)
        case .string(let s): string(s)
        case .array(let a):
            beginArray()
            for element in a { value(element) }
            endArray()
        case .object(let o):
            beginObject()
            for (k, element) in o {
                key(k)
                value(element)
            }
            endObject()
        }
    }

    /// Already-encoded JSON (a cached fragment), written as it is after the usual comma.
    /// Already-encoded JSON held in a String (appended without an intermediate array).
    public mutating func raw(_ encoded: String) {
        separate()
        var s = encoded
        s.withUTF8 { bytes.append(contentsOf: $0) }
    }

    public mutating func raw(_ encoded: [UInt8]) {
        separate()
        bytes.append(contentsOf: encoded)
    }

    // MARK: commas

    /// Before any value or key: a comma unless this is the first member of its container or
    /// the value of a key just written.
    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        guard depth > 0 else { return }
        let level = depth - 1
        if level < 64 {
            let bit: UInt64 = 1 << UInt64(level)
            if hasMembers & bit != 0 { bytes.append(UInt8(ascii: ",")) } else { hasMembers |= bit }
        } else {
            let slot = level - 64
            if slot < deepFlags.count, deepFlags[slot] { bytes.append(UInt8(ascii: ",")) }
            else if slot < deepFlags.count { deepFlags[slot] = true }
        }
    }

    private mutating func push() {
        let level = depth
        depth += 1
        if level < 64 {
            hasMembers &= ~(UInt64(1) << UInt64(level))
        } else {
            deepFlags.append(false)
        }
    }

    /// Unbalanced ends are the caller's mistake; they are written as asked, not trapped on.
    private mutating func pop() {
        afterKey = false
        guard depth > 0 else { return }
        depth -= 1
        if depth >= 64, !deepFlags.isEmpty { deepFlags.removeLast() }
    }

    // MARK: encoding

    private mutating func writeInteger(_ v: Int64) {
        DecimalText.withDigits(v) { bytes.append(contentsOf: $0) }
    }

    private mutating func writeString(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in appendEscaped(utf8) }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Copies runs that need no escape in one go; escapes `"`, `\`, controls below 0x20 and
    /// U+2028/U+2029 (line terminators in JavaScript string literals before ES2019).
    private mutating func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        let n = utf8.count
        // Most strings (every key, ids, channel names) hold nothing to escape: found with one
        // test a byte, then copied in one go.
        var i = 0
        while i < n {
            let c = utf8[i]
            if c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c == 0xE2 { break }
            i += 1
        }
        if i == n { return bytes.append(contentsOf: utf8) }
        var runStart = 0
        while i < n {
            let c = utf8[i]
            var escape: (UInt8, UInt8)? // two-byte escapes: \" \\ \n ...
            var unicode: UInt16?        // \uXXXX
            var width = 1
            switch c {
            case UInt8(ascii: "\""): escape = (UInt8(ascii: "\\"), c)
            case UInt8(ascii: "\\"): escape = (UInt8(ascii: "\\"), c)
            case 0x0A: escape = (UInt8(ascii: "\\"), UInt8(ascii: "n"))
            case 0x0D: escape = (UInt8(ascii: "\\"), UInt8(ascii: "r"))
            case 0x09: escape = (UInt8(ascii: "\\"), UInt8(ascii: "t"))
            case 0x08: escape = (UInt8(ascii: "\\"), UInt8(ascii: "b"))
            case 0x0C: escape = (UInt8(ascii: "\\"), UInt8(ascii: "f"))
            case 0..<0x20: unicode = UInt16(c)
            case 0xE2 where i + 2 < n && utf8[i + 1] == 0x80 && (utf8[i + 2] == 0xA8 || utf8[i + 2] == 0xA9):
                unicode = utf8[i + 2] == 0xA8 ? 0x2028 : 0x2029
                width = 3
            default:
                i += 1
                continue
            }
            if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
            if let (a, b) = escape {
                bytes.append(a)
                bytes.append(b)
            } else if let u = unicode {
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"),
                                          Self.hexDigits[Int(u >> 12)], Self.hexDigits[Int(u >> 8 & 0xF)],
                                          Self.hexDigits[Int(u >> 4 & 0xF)], Self.hexDigits[Int(u & 0xF)]])
            }
            i += width
            runStart = i
        }
        if runStart < n { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<n])) }
    }
}
