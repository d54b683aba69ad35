// One parsed HTTP/1.1 request (a value; the parser produces it, the router reads it).
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The request target in origin form (path and query), what routing reads. An absolute-form
    /// target (`http://host/path?query`, RFC 9112 §3.2.2) arrives here as its path and query,
    /// its authority as the request's one `host` header.
    public var target: String
    public var versionMinor: Int
    /// Header fields in order, names lowercased.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String, target: String, versionMinor: Int = 1,
                headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.versionMinor = versionMinor
        self.headers = headers
        self.body = body
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.target == b.target && a.versionMinor == b.versionMinor
            && a.body == b.body && a.headers.map { $0.name } == b.headers.map { $0.name }
            && a.headers.map { $0.value } == b.headers.map { $0.value }
    }

    /// The path without the query string.
    public var path: String {
        guard let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target }
        return String(target[..<q])
    }

    /// Query parameters, percent-decoded ('+' as space); the first value wins for repeated names.
    public var query: [String: String] {
        var out: [String: String] = [:]
        forEachQueryPair { key, value in
            if out[key] == nil { out[key] = HTTPRequest.percentDecode(bytes: value) ?? "" }
            return true
        }
        return out
    }

    /// One query parameter, as `query[name]` gives it, without building the dictionary: only
    /// its value is decoded. (A WebSocket connect reads `?token=` this way.)
    public func queryValue(_ name: String) -> String? {
        var found: String?
        forEachQueryPair { key, value in
            guard key == name else { return true }
            found = HTTPRequest.percentDecode(bytes: value) ?? ""
            return false
        }
        return found
    }

    /// Each `key=value` pair of the query with its key decoded, in order, until `body` says
    /// stop. Walked over the target's contiguous UTF-8 in place: a `?token=` query carries a
    /// few hundred characters on every WebSocket connect, and stepping a `Substring`'s UTF-8
    /// view index by index was about 3 % of a connect's loop samples, with the decode.
    private func forEachQueryPair(_ body: (String, Slice<UnsafeBufferPointer<UInt8>>) -> Bool) {
        var target = self.target
        target.withUTF8 { bytes in
            guard let q = bytes.firstIndex(of: UInt8(ascii: "?")) else { return }
            var start = q + 1
            while start < bytes.endIndex {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.endIndex
                let pair = bytes[start..<end]
                start = end + 1
                let eq = pair.firstIndex(of: UInt8(ascii: "="))
                guard let key = HTTPRequest.percentDecode(bytes: eq.map { pair[..<$0] } ?? pair), !key.isEmpty else { continue }
                if !body(key, eq.map { pair[($0 + 1)...] } ?? pair[end...]) { return }
            }
        }
    }

    /// The first value of a header (name is matched case-insensitively).
    public func header(_ name: String) -> String? {
        headers.first { Self.isName($0.name, name) }?.value
    }

    /// All values of a header.
    public func headers(_ name: String) -> [String] {
        headers.filter { Self.isName($0.name, name) }.map { $0.value }
    }

    /// Whether the header is present at all (`headers(name)` without building the list).
    public func hasHeader(_ name: String) -> Bool {
        headers.contains { Self.isName($0.name, name) }
    }

    /// Whether a comma-separated header holds a token (case-insensitive), e.g. Connection: upgrade.
    /// Compared over the bytes: it runs several times on every WebSocket connect.
    public func headerHasToken(_ name: String, _ token: String) -> Bool {
        headers.contains { Self.isName($0.name, name) && Self.listHasToken($0.value, token) }
    }

    /// Whether a stored (lowercased) header name is `name` in any case. Compared over the
    /// bytes, not by lowercasing `name`: a name over 15 bytes (`sec-websocket-version`) would
    /// cost an allocation on each of the several lookups of every WebSocket connect.
    private static func isName(_ stored: String, _ name: String) -> Bool {
        // Lengths first (most names asked about are not the one looked at), then the usual
        // case, a lowercase name asked for, then any case.
        guard stored.utf8.count == name.utf8.count else { return false }
        return stored == name || stored.utf8.elementsEqual(name.utf8) { $0 == ASCII.lower($1) }
    }

    /// Whether a comma-separated list holds `token`, ASCII case-insensitively, each element
    /// trimmed of spaces and tabs.
    static func listHasToken(_ list: String, _ token: String) -> Bool {
        let v = list.utf8
        var i = v.startIndex
        while true {
            let end = v[i...].firstIndex(of: UInt8(ascii: ",")) ?? v.endIndex
            var element = v[i..<end]
            while let f = element.first, f == 0x20 || f == 0x09 { element = element.dropFirst() }
            while let l = element.last, l == 0x20 || l == 0x09 { element = element.dropLast() }
            if element.elementsEqual(token.utf8, by: { ASCII.lower($0) == ASCII.lower($1) }) { return true }
            guard end < v.endIndex else { return false }
            i = v.index(after: end)
        }
    }

    /// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told to keep.
    public var keepAlive: Bool {
        if headerHasToken("connection", "close") { return false }
        if versionMinor == 0 { return headerHasToken("connection", "keep-alive") }
        return true
    }

    public static func percentDecode<S: StringProtocol>(_ s: S) -> String? {
        percentDecode(bytes: s.utf8)
    }

    static func percentDecode<Bytes: Collection<UInt8>>(bytes s: Bytes) -> String? {
        guard s.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else {
            // Straight from contiguous bytes (a token in the query on every connect): the
            // generic initializer looked up type metadata at run time on each call.
            if let s = s.withContiguousStorageIfAvailable({ validString($0) }) { return s }
            return String(validating: s, as: UTF8.self)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.count)
        var it = s.makeIterator()
        while let c = it.next() {
            switch c {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let h = it.next(), let l = it.next(),
                      let hv = hexValue(h), let lv = hexValue(l) else { return nil }
                bytes.append(hv << 4 | lv)
            default: bytes.append(c)
            }
        }
        return bytes.withUnsafeBufferPointer(validString)
    }

    private static func validString(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        UTF8Validator.isValid(UnsafeRawBufferPointer(bytes)) ? String(decoding: bytes, as: UTF8.self) : nil
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
