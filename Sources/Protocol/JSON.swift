// The JSON value (RFC 8259) the WebSocket envelope and the bridge API are written in: the
// value type, its ordered object, typed accessors and literal conformances. Parsing lives in
// JSONParser.swift, writing in JSONWriter.swift.

/// A JSON value.
///
/// Numbers are kept as `.int` when they were written without fraction or exponent and fit
/// Int64, as `.double` otherwise. Equality compares numbers by value (`.int(1) == .double(1)`)
/// because JSON has a single number type: the writer prints an integral double without a
/// fraction, so `parse(serialized(v)) == v` must hold across that change of case.
public enum JSON: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    /// The member named `key`; nil unless this is an object holding that key.
    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer value, also for a double that is integral and within ±2^53 (where every
    /// integer is exactly representable, so no silent rounding hides behind the answer).
    public var intValue: Int64? {
        switch self {
        case .int(let v): return v
        case .double(let d): return JSON.exactInteger(d)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let v): return Double(v)
        case .double(let d): return d
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Compact UTF-8 JSON text, object keys in stored order.
    public func serialized() -> [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }

    /// `serialized()` as a String.
    public var text: String { String(decoding: serialized(), as: UTF8.self) }

    /// 2^53: beyond it not every integer has a Double, so integral doubles there stay doubles.
    static let maxExactInteger: Double = 9_007_199_254_740_992

    /// `d` as an Int64 when it is integral and within ±2^53.
    static func exactInteger(_ d: Double) -> Int64? {
        guard d.isFinite, d.rounded(.towardZero) == d, abs(d) <= maxExactInteger else { return nil }
        return Int64(d)
    }
}

extension JSON: Equatable {
    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        // Exact comparison: Int64(exactly:) fails for fractions and for values outside Int64,
        // so 2^63 (Double(Int64.max) rounds to it) does not equal Int64.max.
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Int64(exactly: y) == x
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x == y
        default: return false
        }
    }
}

// MARK: literals (so code and tests can write `let v: JSON = ["id": 7, "ok": true]`)

extension JSON: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSON: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension JSON: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSON: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSON: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension JSON: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
}

extension JSON: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSON)...) {
        var o = JSONObject()
        for (k, v) in elements { o[k] = v }
        self = .object(o)
    }
}

// MARK: JSONObject

/// A JSON object that keeps its members in insertion order, so what is written out reads in
/// the order it was built or received.
///
/// Equality ignores order (RFC 8259 §4: an object is an unordered collection). Keys compare
/// as Swift Strings, that is by canonical equivalence: two keys that differ only in Unicode
/// normalization are the same key (and a parsed object holding both is refused as a
/// duplicate), stricter than §8.3's code-unit comparison on purpose, since such keys render
/// identically.
public struct JSONObject: Sendable {
    public typealias Element = (key: String, value: JSON)

    private var entries: [Element] = []
    /// Key → position in `entries`, built once the object is big enough that a linear scan
    /// would make hostile input (one object with 100,000 keys) quadratic.
    private var index: [String: Int]?

    private static let indexThreshold = 16

    public init() {}

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }
    public var keys: [String] { entries.map(\.key) }

    /// The member named `key`; setting nil removes it, setting an existing key replaces its
    /// value in place, setting a new key appends it.
    public subscript(key: String) -> JSON? {
        get {
            guard let i = position(of: key) else { return nil }
            return entries[i].value
        }
        set {
            if let i = position(of: key) {
                if let newValue {
                    entries[i].value = newValue
                } else {
                    entries.remove(at: i)
                    rebuildIndex()
                }
            } else if let newValue {
                appendNew(key, newValue)
            }
        }
    }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        return entries.firstIndex { $0.key == key }
    }

    /// Appends a member the caller knows is absent (the parser checks before it calls).
    mutating func appendNew(_ key: String, _ value: JSON) {
        entries.append((key, value))
        if index != nil {
            index?[key] = entries.count - 1
        } else if entries.count > JSONObject.indexThreshold {
            rebuildIndex()
        }
    }

    /// True when `key` is present.
    func contains(_ key: String) -> Bool { position(of: key) != nil }

    mutating func reserveCapacity(_ n: Int) { entries.reserveCapacity(n) }

    private mutating func rebuildIndex() {
        guard entries.count > JSONObject.indexThreshold else { index = nil; return }
        var built = [String: Int](minimumCapacity: entries.count)
        for (i, e) in entries.enumerated() { built[e.key] = i }
        index = built
    }
}

extension JSONObject: Sequence {
    public func makeIterator() -> IndexingIterator<[Element]> { entries.makeIterator() }
    public var underestimatedCount: Int { entries.count }
}

extension JSONObject: Equatable {
    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.count == b.count else { return false }
        for (k, v) in a.entries {
            guard let other = b[k], other == v else { return false }
        }
        return true
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// A repeated key keeps its first position and its last value.
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self.init()
        for (k, v) in elements { self[k] = v }
    }
}
