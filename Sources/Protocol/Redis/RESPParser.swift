// An incremental RESP2 + RESP3 reply parser: bytes in (any split), whole values out. Pure: no
// socket, no clock. An aggregate's elements are collected on a stack as they complete, so a
// large array fed in small pieces is parsed once, not again from its start on every read;
// only a scalar cut by a read boundary is looked at again. Every declared length is checked
// against `RESPLimits` before anything is buffered for it.
public struct RESPParser {
    private enum Kind { case array, map, set, push, attribute }
    private struct Aggregate {
        let kind: Kind
        var remaining: Int
        var items: [RESPValue]
    }
    private enum Element {
        case value(RESPValue)
        case aggregate(Kind, Int)
    }

    private var buffer: [UInt8] = []
    private var position = 0
    private var stack: [Aggregate] = []
    public let limits: RESPLimits

    public init(limits: RESPLimits = RESPLimits()) { self.limits = limits }

    /// Bytes received but not yet part of a returned value.
    public var bufferedBytes: Int { buffer.count - position }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: [UInt8]) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete value, or nil until more bytes arrive. After an error the parser is
    /// unusable (the stream is out of step); the owner drops it with the connection.
    public mutating func next() throws(RESPError) -> RESPValue? {
        while true {
            guard let (element, end) = try parseElement(at: position) else {
                compact()
                return nil
            }
            position = end
            switch element {
            case .value(let v):
                if let done = complete(v) { return done }
            case .aggregate(let kind, let count):
                if count == 0 {
                    if kind == .attribute { continue } // an empty attribute describes nothing
                    if let done = complete(Self.make(kind, [])) { return done }
                    continue
                }
                guard stack.count < limits.maxDepth else { throw .nestedTooDeep }
                stack.append(Aggregate(kind: kind, remaining: count, items: []))
                stack[stack.count - 1].items.reserveCapacity(min(count, 1024))
            }
        }
    }

    /// Adds `value` to the open aggregates; returns a top-level value once one is whole.
    private mutating func complete(_ value: RESPValue) -> RESPValue? {
        var v = value
        while !stack.isEmpty {
            let top = stack.count - 1
            stack[top].items.append(v)
            stack[top].remaining -= 1
            guard stack[top].remaining == 0 else { return nil }
            let done = stack.removeLast()
            // An attribute (RESP3 `|`) describes the reply after it; the client has no use for it.
            if done.kind == .attribute { return nil }
            v = Self.make(done.kind, done.items)
        }
        return v
    }

    private static func make(_ kind: Kind, _ items: [RESPValue]) -> RESPValue {
        switch kind {
        case .array: return .array(items)
        case .map, .attribute: return .map(items)
        case .set: return .set(items)
        case .push: return .push(items)
        }
    }

    private mutating func compact() {
        if position == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 20)
            position = 0
        } else if position >= 4096 && position * 2 >= buffer.count {
            buffer.removeFirst(position)
            position = 0
        }
    }

    /// One element starting at `p` and where it ends, or nil when it is not all here yet.
    private func parseElement(at p: Int) throws(RESPError) -> (Element, Int)? {
        guard p < buffer.count else { return nil }
        guard let lineEnd = try findLineEnd(from: p + 1) else { return nil }
        let type = buffer[p]
        let line = buffer[(p + 1)..<lineEnd]
        let afterLine = lineEnd + 2
        switch type {
        case UInt8(ascii: "+"):
            return (.value(.simpleString(String(decoding: line, as: UTF8.self))), afterLine)
        case UInt8(ascii: "-"):
            return (.value(.error(String(decoding: line, as: UTF8.self))), afterLine)
        case UInt8(ascii: ":"):
            guard let n = Self.integer(line) else { throw .invalidInteger }
            return (.value(.integer(n)), afterLine)
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            guard let n = Self.integer(line), n >= -1 else { throw .invalidLength }
            if n == -1 { return (.value(.null), afterLine) }
            guard n <= limits.maxBulkLength else { throw .bulkTooLong(Int(n)) }
            let length = Int(n)
            let end = afterLine + length
            guard buffer.count >= end + 2 else { return nil }
            guard buffer[end] == 13, buffer[end + 1] == 10 else { throw .missingCRLF }
            var body = Array(buffer[afterLine..<end])
            switch type {
            case UInt8(ascii: "!"):
                return (.value(.error(String(decoding: body, as: UTF8.self))), end + 2)
            case UInt8(ascii: "="):
                // A verbatim string starts with its format: `txt:` or `mkd:`.
                if body.count >= 4 && body[3] == UInt8(ascii: ":") { body.removeFirst(4) }
                return (.value(.bulkString(body)), end + 2)
            default:
                return (.value(.bulkString(body)), end + 2)
            }
        case UInt8(ascii: "*"), UInt8(ascii: "%"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "|"):
            guard let n = Self.integer(line), n >= -1 else { throw .invalidLength }
            if n == -1 { return (.value(.null), afterLine) }
            let isMap = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            let count = isMap ? n.multipliedReportingOverflow(by: 2).partialValue : n
            guard n <= limits.maxAggregateLength, count <= limits.maxAggregateLength else { throw .aggregateTooLong(Int(n)) }
            let kind: Kind = switch type {
            case UInt8(ascii: "*"): .array
            case UInt8(ascii: "%"): .map
            case UInt8(ascii: "~"): .set
            case UInt8(ascii: ">"): .push
            default: .attribute
            }
            return (.aggregate(kind, Int(count)), afterLine)
        case UInt8(ascii: "_"):
            guard line.isEmpty else { throw .invalidLength }
            return (.value(.null), afterLine)
        case UInt8(ascii: ","):
            guard let d = Double(String(decoding: line, as: UTF8.self)) else { throw .invalidDouble }
            return (.value(.double(d)), afterLine)
        case UInt8(ascii: "#"):
            guard line.count == 1 else { throw .invalidBoolean }
            switch line[line.startIndex] {
            case UInt8(ascii: "t"): return (.value(.boolean(true)), afterLine)
            case UInt8(ascii: "f"): return (.value(.boolean(false)), afterLine)
            default: throw .invalidBoolean
            }
        case UInt8(ascii: "("):
            guard Self.integer(line) != nil || Self.isBigInteger(line) else { throw .invalidInteger }
            return (.value(.bigNumber(String(decoding: line, as: UTF8.self))), afterLine)
        default:
            throw .unknownType(type)
        }
    }

    /// The index of the `\r` of the first CRLF at or after `from`; nil when no whole line is
    /// here yet. A line longer than the limit is an error even before its end arrives.
    private func findLineEnd(from: Int) throws(RESPError) -> Int? {
        var i = from
        let count = buffer.count
        while i < count {
            if buffer[i] == 13 {
                guard i + 1 < count else { return nil }
                guard buffer[i + 1] == 10 else { throw .missingCRLF }
                guard i - from <= limits.maxLineLength else { throw .lineTooLong }
                return i
            }
            i += 1
        }
        if count - from > limits.maxLineLength { throw .lineTooLong }
        return nil
    }

    /// A decimal Int64 with an optional sign; nil on anything else, an empty line or overflow.
    static func integer(_ digits: ArraySlice<UInt8>) -> Int64? {
        var i = digits.startIndex
        guard i < digits.endIndex else { return nil }
        var negative = false
        if digits[i] == UInt8(ascii: "-") || digits[i] == UInt8(ascii: "+") {
            negative = digits[i] == UInt8(ascii: "-")
            i += 1
            guard i < digits.endIndex else { return nil }
        }
        var n: Int64 = 0
        while i < digits.endIndex {
            let d = digits[i] &- UInt8(ascii: "0")
            guard d < 10 else { return nil }
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(Int64(d)) : m.addingReportingOverflow(Int64(d))
            guard !o1, !o2 else { return nil }
            n = s
            i += 1
        }
        return n
    }

    private static func isBigInteger(_ digits: ArraySlice<UInt8>) -> Bool {
        var body = digits
        if let f = body.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { body = body.dropFirst() }
        return !body.isEmpty && body.allSatisfy { $0 &- UInt8(ascii: "0") < 10 }
    }
}

/// Commands as RESP arrays of bulk strings: the only form a client sends.
public enum RESPCommand {
    public static func encode(_ args: [[UInt8]], into out: inout [UInt8]) {
        appendHeader(UInt8(ascii: "*"), args.count, into: &out)
        for a in args {
            appendHeader(UInt8(ascii: "$"), a.count, into: &out)
            out.append(contentsOf: a)
            out.append(13)
            out.append(10)
        }
    }

    public static func encode(_ args: [String], into out: inout [UInt8]) {
        appendHeader(UInt8(ascii: "*"), args.count, into: &out)
        for a in args {
            appendHeader(UInt8(ascii: "$"), a.utf8.count, into: &out)
            out.append(contentsOf: a.utf8)
            out.append(13)
            out.append(10)
        }
    }

    public static func encode(_ args: [String]) -> [UInt8] {
        var out: [UInt8] = []
        encode(args, into: &out)
        return out
    }

    private static func appendHeader(_ type: UInt8, _ n: Int, into out: inout [UInt8]) {
        out.append(type)
        out.append(contentsOf: String(n).utf8)
        out.append(13)
        out.append(10)
    }
}
