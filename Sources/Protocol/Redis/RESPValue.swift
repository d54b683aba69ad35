// RESP (the Redis serialization protocol), the values a reply is made of: RESP2's five types
// and RESP3's additions. Pure values; the parser makes them, the Redis client reads them.

public enum RESPValue: Equatable, Sendable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR …` and RESP3's blob error `!`
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$5 hello` (binary-safe; RESP3's verbatim string `=` arrives here without its `txt:`)
    case bulkString([UInt8])
    /// `*n`
    case array([RESPValue])
    /// RESP2's null bulk string and null array (`$-1`, `*-1`) and RESP3's `_`
    case null
    /// `,3.14`
    case double(Double)
    /// `#t` / `#f`
    case boolean(Bool)
    /// `(3492890328409238509324850943850943825024385` (kept as its digits)
    case bigNumber(String)
    /// `%n`: key, value pairs in the order sent
    case map([RESPValue])
    /// `~n`
    case set([RESPValue])
    /// `>n`: out-of-band data (pub/sub messages on a RESP3 connection)
    case push([RESPValue])

    /// The text of a simple or bulk string (nil for other types or invalid UTF-8).
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulkString(let b): return String(validating: b, as: UTF8.self)
        default: return nil
        }
    }

    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let b): return b
        case .simpleString(let s): return Array(s.utf8)
        default: return nil
        }
    }

    /// The elements of an array, set or push.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let a), .set(let a), .push(let a): return a
        default: return nil
        }
    }

    public var integer: Int64? {
        if case .integer(let n) = self { return n }
        return nil
    }
}

/// A rule of RESP the input broke, or a limit it passed. Either way the connection's byte
/// stream can no longer be trusted: the client closes it.
public enum RESPError: Error, Equatable, Sendable {
    case unknownType(UInt8)
    case invalidLength
    case bulkTooLong(Int)
    case aggregateTooLong(Int)
    case nestedTooDeep
    case lineTooLong
    case missingCRLF
    case invalidInteger
    case invalidDouble
    case invalidBoolean
}

/// The sizes a reply may declare. A declared length over a limit is an error before anything
/// is allocated for it, so a corrupt or hostile stream cannot ask for gigabytes.
public struct RESPLimits: Sendable {
    /// Longest bulk string (Redis's own default `proto-max-bulk-len` is 512 MiB; ours is what a
    /// hub ever stores or publishes, with room).
    public var maxBulkLength = 16 << 20
    /// Most elements an aggregate may declare (a map counts its keys and values).
    public var maxAggregateLength = 1 << 20
    public var maxDepth = 32
    /// Longest simple string, error, number line.
    public var maxLineLength = 64 * 1024

    public init() {}
}
