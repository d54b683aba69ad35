// Incremental UTF-8 validation (Björn Höhrmann's DFA) so a text message can be checked
// frame by frame and fail as soon as an invalid sequence appears (Autobahn 6.*), even when
// a code point straddles a fragment boundary. ASCII runs take an 8-bytes-at-a-time fast path.
public struct UTF8Validator: Sendable {
    private var state: UInt8 = UTF8Validator.accept

    static let accept: UInt8 = 0
    static let reject: UInt8 = 12

    public init() {}

    /// True when everything fed so far ends on a code-point boundary.
    public var isComplete: Bool { state == UTF8Validator.accept }

    public mutating func reset() { state = UTF8Validator.accept }

    /// Feeds bytes; returns false once an invalid sequence has been seen.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return state != UTF8Validator.reject }
        let count = bytes.count
        var i = 0
        var s = state
        while i < count {
            if s == UTF8Validator.accept {
                // ASCII fast path: skip whole words with no high bit set.
                while i + 8 <= count {
                    let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 != 0 { break }
                    i += 8
                }
                if i >= count { break }
            }
            let byte = base.load(fromByteOffset: i, as: UInt8.self)
            let type = UTF8Validator.types[Int(byte)]
            s = UTF8Validator.transitions[Int(s) + Int(type)]
            if s == UTF8Validator.reject { state = s; return false }
            i += 1
        }
        state = s
        return s != UTF8Validator.reject
    }

    public mutating func feed(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// Validates a complete buffer.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var v = UTF8Validator()
        return v.feed(bytes) && v.isComplete
    }

    public static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { isValid($0) }
    }

    // Character classes for each byte value.
    private static let types: [UInt8] = [
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
        1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,9,
        7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7, 7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,
        8,8,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
        10,3,3,3,3,3,3,3,3,3,3,3,3,4,3,3, 11,6,6,6,5,8,8,8,8,8,8,8,8,8,8,8,
    ]
    // State transitions: state (a multiple of 12) + character class.
    private static let transitions: [UInt8] = [
        0,12,24,36,60,96,84,12,12,12,48,72, 12,12,12,12,12,12,12,12,12,12,12,12,
        12,0,12,12,12,12,12,0,12,0,12,12, 12,24,12,12,12,12,12,24,12,24,12,12,
        12,12,12,12,12,12,12,24,12,12,12,12, 12,24,12,12,12,12,12,12,12,24,12,12,
        12,12,12,12,12,12,12,36,12,36,12,12, 12,36,12,12,12,12,12,36,12,36,12,12,
        12,36,12,12,12,12,12,12,12,12,12,12,
    ]
}
