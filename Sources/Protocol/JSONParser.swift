// A strict RFC 8259 JSON parser for hostile input: every rule a sender can break has its own
// JSONError, and size and nesting are limited. It works on raw bytes and keeps its own stack
// of open containers instead of recursing, so parsing itself never grows the thread's stack.
// maxDepth still matters: a parsed value is released, compared and written recursively.

/// Every rule of RFC 8259 (and of the limits) that input can break. Offsets are byte offsets
/// into the input.
public enum JSONError: Error, Equatable, Sendable {
    /// The input ended inside a value (or held no value at all).
    case unexpectedEnd
    /// A byte that cannot start or continue what was expected here: a trailing comma, a
    /// control character inside a string, `NaN`, a comment, a misspelt literal.
    case unexpectedCharacter(offset: Int)
    /// A number outside the grammar (`01`, `-`, `1.`, `1e`) or too big for a Double.
    case invalidNumber(offset: Int)
    /// An unknown escape, a `\u` without four hex digits, or a lone surrogate.
    case invalidEscape(offset: Int)
    case invalidUTF8
    case tooDeep(limit: Int)
    /// Something other than whitespace after the value.
    case trailingData(offset: Int)
    case duplicateKey(String)
    case tooLarge(limit: Int)

    public var message: String {
        switch self {
        case .unexpectedEnd: return "unexpected end of JSON"
        case .unexpectedCharacter(let offset): return "unexpected character at byte \(offset)"
        case .invalidNumber(let offset): return "invalid number at byte \(offset)"
        case .invalidEscape(let offset): return "invalid escape at byte \(offset)"
        case .invalidUTF8: return "JSON is not valid UTF-8"
        case .tooDeep(let limit): return "JSON nested deeper than \(limit)"
        case .trailingData(let offset): return "data after the JSON value at byte \(offset)"
        case .duplicateKey(let key): return "duplicate key \(JSONText.quote(key))"
        case .tooLarge(let limit): return "JSON over \(limit) bytes"
        }
    }
}

public enum JSONParser {
    /// Parses one JSON text. `maxDepth` counts nested arrays and objects (a scalar is depth 0,
    /// `[]` is depth 1); `maxBytes` bounds the whole input.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 32,
                             maxBytes: Int = 1 << 20) throws(JSONError) -> JSON {
        guard bytes.count <= maxBytes else { throw .tooLarge(limit: maxBytes) }
        // Checked once up front: afterwards every string slice decodes without repair, and
        // bytes outside strings only need the ASCII grammar.
        guard UTF8Validator.isValid(bytes) else { throw .invalidUTF8 }
        guard let base = bytes.baseAddress, bytes.count > 0 else { throw .unexpectedEnd }
        var reader = Reader(base: base.assumingMemoryBound(to: UInt8.self), end: bytes.count, maxDepth: maxDepth)
        return try reader.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], maxDepth: Int = 32,
                             maxBytes: Int = 1 << 20) throws(JSONError) -> JSON {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONError) in try parse(raw, maxDepth: maxDepth, maxBytes: maxBytes) }
        }
        return try result.get()
    }

    public static func parse(_ text: String, maxDepth: Int = 32,
                             maxBytes: Int = 1 << 20) throws(JSONError) -> JSON {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(JSONError) in
                try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth, maxBytes: maxBytes)
            }
        }
        return try result.get()
    }
}

// MARK: the reader

private enum Byte {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
}

/// One open array or object. Containers are built in place in the frame (Array's subscript
/// modifies in place, so appending to `frames[top].elements` copies nothing).
private struct Frame {
    var isObject: Bool
    var elements: [JSON] = []
    var object = JSONObject()
    /// The key whose value is being parsed (objects only).
    var key = ""
}

private struct Reader {
    let base: UnsafePointer<UInt8>
    let end: Int
    let maxDepth: Int
    var i = 0

    init(base: UnsafePointer<UInt8>, end: Int, maxDepth: Int) {
        self.base = base
        self.end = end
        self.maxDepth = maxDepth
    }

    /// The whole input: one value between optional whitespace.
    ///
    /// The loop alternates two steps: read one value (opening a container pushes a frame and
    /// goes back for its first member), then hand the finished value to the innermost open
    /// container and read what follows it, a comma (back for the next member) or a closing
    /// bracket (the container itself becomes the finished value, one level up).
    /// Steps over an opening bracket at nesting `depth`; true when the container is empty (its
    /// closing bracket consumed too).
    @inline(__always)
    private mutating func openContainer(depth: Int, closer: UInt8) throws(JSONError) -> Bool {
        guard depth < maxDepth else { throw .tooDeep(limit: maxDepth) }
        i += 1
        skipWhitespace()
        guard i < end, base[i] == closer else { return false }
        i += 1
        return true
    }

    /// Room the outermost object is made with. An op's envelope holds 4 to 8 members: one
    /// allocation instead of growing 1, 2, 4, 8. Nested objects stay as small as they are.
    private static let outermostMembers = 8

    mutating func parseDocument() throws(JSONError) -> JSON {
        let start = i
        if let object = flatObject() { return object }
        i = start
        return try parseNested()
    }

    /// The usual document, an object of scalar members (an op's envelope, a token's claims),
    /// read without the stack of open containers. nil for anything else, including every error:
    /// the general loop then reads the document from the start, so what it returns or throws
    /// is the parser's one answer.
    private mutating func flatObject() -> JSON? {
        do {
            skipWhitespace()
            guard maxDepth >= 1, i < end, base[i] == Byte.openBrace else { return nil }
            i += 1
            skipWhitespace()
            guard i < end, base[i] != Byte.closeBrace else { return nil }
            var object = JSONObject()
            object.reserveCapacity(Self.outermostMembers)
            while true {
                let key = try readKey(in: object)
                skipWhitespace()
                guard i < end, let value = try readScalar() else { return nil } // a container, or not a value
                object.appendNew(key, value)
                skipWhitespace()
                guard i < end else { return nil }
                let c = base[i]
                i += 1
                if c == Byte.comma { continue }
                guard c == Byte.closeBrace else { return nil }
                skipWhitespace()
                return i == end ? .object(object) : nil
            }
        } catch {
            return nil
        }
    }

    private mutating func parseNested() throws(JSONError) -> JSON {
        var frames: [Frame] = []
        while true {
            skipWhitespace()
            guard i < end else { throw .unexpectedEnd }
            var value: JSON
            switch base[i] {
            case Byte.openBrace:
                if try openContainer(depth: frames.count, closer: Byte.closeBrace) {
                    value = .object(JSONObject())
                } else {
                    var frame = Frame(isObject: true)
                    if frames.isEmpty { frame.object.reserveCapacity(Self.outermostMembers) }
                    frame.key = try readKey(in: frame.object)
                    frames.append(frame)
                    continue
                }
            case Byte.openBracket:
                if try openContainer(depth: frames.count, closer: Byte.closeBracket) {
                    value = .array([])
                } else {
                    frames.append(Frame(isObject: false))
                    continue
                }
            default:
                guard let scalar = try readScalar() else { throw .unexpectedCharacter(offset: i) }
                value = scalar
            }

            // Hand `value` to the open containers, closing as many as the input closes.
            while true {
                let top = frames.count - 1
                guard top >= 0 else {
                    skipWhitespace()
                    guard i == end else { throw .trailingData(offset: i) }
                    return value
                }
                if frames[top].isObject {
                    frames[top].object.appendNew(frames[top].key, value)
                } else {
                    frames[top].elements.append(value)
                }
                skipWhitespace()
                guard i < end else { throw .unexpectedEnd }
                let c = base[i]
                i += 1
                if c == Byte.comma {
                    if frames[top].isObject {
                        frames[top].key = try readKey(in: frames[top].object)
                    }
                    break // next member; a `]` or `}` there is a trailing comma and fails as a value
                } else if frames[top].isObject && c == Byte.closeBrace {
                    value = .object(frames.removeLast().object)
                } else if !frames[top].isObject && c == Byte.closeBracket {
                    value = .array(frames.removeLast().elements)
                } else {
                    throw .unexpectedCharacter(offset: i - 1)
                }
            }
        }
    }

    /// The string, number or literal starting at `i` (which is in range); nil, with nothing
    /// consumed, when no scalar starts there.
    private mutating func readScalar() throws(JSONError) -> JSON? {
        switch base[i] {
        case Byte.quote:
            i += 1
            return .string(try readString())
        case Byte.minus, Byte.zero...Byte.nine:
            return try readNumber()
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        default:
            return nil
        }
    }

    /// RFC 8259 §2: insignificant whitespace is space, tab, LF and CR, nothing else.
    private mutating func skipWhitespace() {
        while i < end {
            switch base[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    /// `"key"` then `:` (whitespace around both), refusing a key already in `object`.
    private mutating func readKey(in object: JSONObject) throws(JSONError) -> String {
        skipWhitespace()
        guard i < end else { throw .unexpectedEnd }
        guard base[i] == Byte.quote else { throw .unexpectedCharacter(offset: i) }
        i += 1
        let key = try readString()
        if object.contains(key) { throw .duplicateKey(key) }
        skipWhitespace()
        guard i < end else { throw .unexpectedEnd }
        guard base[i] == Byte.colon else { throw .unexpectedCharacter(offset: i) }
        i += 1
        return key
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let bytes = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for b in bytes {
            guard i < end else { throw .unexpectedEnd }
            guard base[i] == b else { throw .unexpectedCharacter(offset: i) }
            i += 1
        }
    }

    // MARK: strings

    /// The rest of a string whose opening quote has been consumed; consumes the closing quote.
    private mutating func readString() throws(JSONError) -> String {
        let start = i
        // Fast path: a run with no escape becomes a String straight from the input bytes.
        while i < end {
            let c = base[i]
            if c == Byte.quote {
                let s = String(decoding: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
                i += 1
                return s
            }
            if c == Byte.backslash { break }
            if c < 0x20 { throw .unexpectedCharacter(offset: i) }
            i += 1
        }
        guard i < end else { throw .unexpectedEnd }
        // Slow path from the first backslash: unescaped runs are copied, escapes decoded.
        var out: [UInt8] = []
        out.reserveCapacity(i - start + 16)
        out.append(contentsOf: UnsafeBufferPointer(start: base + start, count: i - start))
        while i < end {
            let c = base[i]
            if c == Byte.quote {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c < 0x20 { throw .unexpectedCharacter(offset: i) }
            if c == Byte.backslash {
                try readEscape(into: &out)
            } else {
                out.append(c)
                i += 1
            }
        }
        throw .unexpectedEnd
    }

    /// One escape at `i` (the backslash), its UTF-8 appended to `out`.
    private mutating func readEscape(into out: inout [UInt8]) throws(JSONError) {
        let escapeStart = i
        guard i + 1 < end else { throw .unexpectedEnd }
        let c = base[i + 1]
        i += 2
        switch c {
        case Byte.quote, Byte.backslash, Byte.slash: out.append(c)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try readHex4(escapeStart: escapeStart)
            switch scalar {
            case 0xD800...0xDBFF:
                // A high surrogate counts only with a `\u` low surrogate right after it.
                for expected in [Byte.backslash, UInt8(ascii: "u")] {
                    guard i < end else { throw .unexpectedEnd }
                    guard base[i] == expected else { throw .invalidEscape(offset: escapeStart) }
                    i += 1
                }
                let low = try readHex4(escapeStart: escapeStart)
                guard (0xDC00...0xDFFF).contains(low) else { throw .invalidEscape(offset: escapeStart) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            case 0xDC00...0xDFFF:
                throw .invalidEscape(offset: escapeStart)
            default:
                break
            }
            appendUTF8(scalar, to: &out)
        default:
            throw .invalidEscape(offset: escapeStart)
        }
    }

    private mutating func readHex4(escapeStart: Int) throws(JSONError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < end else { throw .unexpectedEnd }
            let c = base[i]
            let digit: UInt8
            switch c {
            case Byte.zero...Byte.nine: digit = c - Byte.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw .invalidEscape(offset: escapeStart)
            }
            v = v << 4 | UInt32(digit)
            i += 1
        }
        return v
    }

    /// `scalar` is below 0x110000 and not a surrogate (the caller made sure).
    private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(0xC0 | UInt8(scalar >> 6))
            out.append(0x80 | UInt8(scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(0xE0 | UInt8(scalar >> 12))
            out.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            out.append(0x80 | UInt8(scalar & 0x3F))
        default:
            out.append(0xF0 | UInt8(scalar >> 18))
            out.append(0x80 | UInt8((scalar >> 12) & 0x3F))
            out.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            out.append(0x80 | UInt8(scalar & 0x3F))
        }
    }

    // MARK: numbers

    private func isDigit(at p: Int) -> Bool {
        p < end && base[p] >= Byte.zero && base[p] <= Byte.nine
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` (RFC 8259 §6). An integer
    /// without fraction or exponent that fits Int64 is `.int`; anything else goes through
    /// Double's correctly rounded conversion and must come out finite.
    private mutating func readNumber() throws(JSONError) -> JSON {
        let start = i
        var negative = false
        if base[i] == Byte.minus {
            negative = true
            i += 1
        }
        guard isDigit(at: i) else { throw .invalidNumber(offset: start) }
        // Magnitude accumulated in UInt64 so Int64.min (whose magnitude Int64 lacks) fits.
        var magnitude: UInt64 = 0
        var overflow = false
        if base[i] == Byte.zero {
            i += 1
            // No leading zeros: "01" is not a number followed by trailing data, it is wrong.
            if isDigit(at: i) { throw .invalidNumber(offset: start) }
        } else {
            while isDigit(at: i) {
                let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (m2, o2) = m1.addingReportingOverflow(UInt64(base[i] - Byte.zero))
                overflow = overflow || o1 || o2
                magnitude = m2
                i += 1
            }
        }
        var isInteger = true
        if i < end, base[i] == Byte.dot {
            isInteger = false
            i += 1
            guard isDigit(at: i) else { throw .invalidNumber(offset: start) }
            while isDigit(at: i) { i += 1 }
        }
        if i < end, base[i] == UInt8(ascii: "e") || base[i] == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if i < end, base[i] == Byte.plus || base[i] == Byte.minus { i += 1 }
            guard isDigit(at: i) else { throw .invalidNumber(offset: start) }
            while isDigit(at: i) { i += 1 }
        }
        if isInteger && !overflow {
            if !negative, magnitude <= UInt64(Int64.max) { return .int(Int64(magnitude)) }
            if negative, magnitude <= UInt64(Int64.max) + 1 {
                return .int(magnitude == 0 ? 0 : Int64(truncatingIfNeeded: 0 &- magnitude))
            }
        }
        // The text is plain JSON number grammar here, which Double's parser accepts as is.
        let text = String(decoding: UnsafeBufferPointer(start: base + start, count: i - start), as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw .invalidNumber(offset: start) }
        return .double(d)
    }
}
