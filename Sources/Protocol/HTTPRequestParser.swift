// An incremental HTTP/1.1 request parser (RFC 9112) with limits on every part: bytes are
// appended as they arrive, `next()` returns each complete request. Content-Length and chunked
// bodies; pipelined requests; bytes after an upgrade request are handed back untouched.
// Pure code: no sockets, no clocks.

import Glibc

public struct HTTPLimits: Sendable, Equatable {
    public var maxRequestLine = 8 * 1024
    /// The whole header section, request line included.
    public var maxHeaderBytes = 16 * 1024
    public var maxHeaderCount = 100
    public var maxBodyBytes = 1 << 20
    public init() {}
    public init(maxRequestLine: Int = 8 * 1024, maxHeaderBytes: Int = 16 * 1024,
                maxHeaderCount: Int = 100, maxBodyBytes: Int = 1 << 20) {
        self.maxRequestLine = maxRequestLine
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

public struct HTTPRequestParser {
    public let limits: HTTPLimits
    private var buffer: [UInt8] = []
    private var start = 0        // first unconsumed byte
    private var scanFrom = 0     // where the search for the end of the head resumes
    private var state = State.head

    private enum State {
        case head
        case body(HTTPRequest, remaining: Int)
        case chunkSize(HTTPRequest)
        case chunkData(HTTPRequest, remaining: Int)
        case chunkEnd(HTTPRequest)
        case trailers(HTTPRequest, scanFrom: Int)
    }

    /// Set when a request head asked for `Expect: 100-continue` and its body has not come yet.
    /// The connection answers `100 Continue` and clears it.
    public var wantsContinue = false

    public init(limits: HTTPLimits = HTTPLimits()) { self.limits = limits }

    /// Bytes received and not yet consumed by a request.
    public var bufferedCount: Int { buffer.count - start }

    /// True while no part of a request has arrived (a keep-alive connection between requests).
    public var isIdle: Bool {
        if case .head = state { return bufferedCount == 0 }
        return false
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Whatever follows the last request (for example WebSocket frames sent right after an
    /// upgrade request); the parser is empty afterwards.
    public mutating func takeBuffered() -> [UInt8] {
        let rest = Array(buffer[start...])
        buffer.removeAll()
        start = 0
        scanFrom = 0
        return rest
    }

    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            scanFrom -= start
            start = 0
        } else if start > 16 * 1024 {
            buffer.removeFirst(start)
            scanFrom -= start
            if case .trailers(let r, let s) = state { state = .trailers(r, scanFrom: s - start) }
            start = 0
        }
        if scanFrom < 0 { scanFrom = 0 }
    }

    /// The next complete request, nil when more bytes are needed.
    public mutating func next() throws(HTTPError) -> HTTPRequest? {
        while true {
            switch state {
            case .head:
                guard let request = try parseHead() else { return nil }
                if let done = try beginBody(request) { return done }
            case .body(var request, let remaining):
                let available = buffer.count - start
                guard available >= remaining else { return nil }
                request.body.append(contentsOf: buffer[start..<(start + remaining)])
                start += remaining
                return finish(request)
            case .chunkSize(let request):
                guard let line = takeLine(limit: 1024) else {
                    if buffer.count - start > 1024 { throw .badRequest("chunk size line too long") }
                    return nil
                }
                let sizeText = line.split(separator: UInt8(ascii: ";"), maxSplits: 1,
                                          omittingEmptySubsequences: false)[0]
                guard let size = Self.parseHex(sizeText) else { throw .badRequest("invalid chunk size") }
                if size == 0 {
                    state = .trailers(request, scanFrom: start)
                } else {
                    guard request.body.count + size <= limits.maxBodyBytes else {
                        throw .bodyTooLarge(limit: limits.maxBodyBytes)
                    }
                    state = .chunkData(request, remaining: size)
                }
            case .chunkData(var request, let remaining):
                let available = buffer.count - start
                guard available > 0 else { return nil }
                let n = min(available, remaining)
                request.body.append(contentsOf: buffer[start..<(start + n)])
                start += n
                state = n == remaining ? .chunkEnd(request) : .chunkData(request, remaining: remaining - n)
                if n < remaining { return nil }
            case .chunkEnd(let request):
                guard let line = takeLine(limit: 2) else {
                    if buffer.count - start >= 2 { throw .badRequest("chunk not followed by CRLF") }
                    return nil
                }
                guard line.isEmpty else { throw .badRequest("chunk not followed by CRLF") }
                state = .chunkSize(request)
            case .trailers(let request, _):
                // Trailer fields are read and dropped; an empty line ends the message.
                guard let line = takeLine(limit: limits.maxHeaderBytes) else {
                    if buffer.count - start > limits.maxHeaderBytes {
                        throw .headersTooLarge(limit: limits.maxHeaderBytes)
                    }
                    return nil
                }
                if line.isEmpty { return finish(request) }
            }
        }
    }

    private mutating func finish(_ request: HTTPRequest) -> HTTPRequest {
        state = .head
        scanFrom = start
        wantsContinue = false
        return request
    }

    /// One line ending in LF (CR stripped), consumed; nil when not complete.
    private mutating func takeLine(limit: Int) -> ArraySlice<UInt8>? {
        let end = min(buffer.count, start + limit + 2)
        var i = start
        while i < end {
            if buffer[i] == UInt8(ascii: "\n") {
                var line = buffer[start..<i]
                if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
                start = i + 1
                return line
            }
            i += 1
        }
        return nil
    }

    private static func parseHex(_ s: ArraySlice<UInt8>) -> Int? {
        var trimmed = s
        while trimmed.last == UInt8(ascii: " ") || trimmed.last == UInt8(ascii: "\t") { trimmed = trimmed.dropLast() }
        guard !trimmed.isEmpty, trimmed.count <= 8 else { return nil }
        var value = 0
        for c in trimmed {
            guard let v = HTTPRequest.hexValue(c) else { return nil }
            value = value << 4 | Int(v)
        }
        return value
    }

    // MARK: head

    private mutating func parseHead() throws(HTTPError) -> HTTPRequest? {
        // RFC 9112 §2.2: ignore empty lines before the request line.
        while start < buffer.count, buffer[start] == UInt8(ascii: "\r") || buffer[start] == UInt8(ascii: "\n") {
            start += 1
        }
        if scanFrom < start { scanFrom = start }
        // Find the blank line ending the head: LF LF or LF CR LF.
        var end = -1
        let limit = buffer.count
        var sawLineEnd = false
        // From line end to line end with memchr, not byte by byte: a head is a few hundred
        // bytes on every connect.
        buffer.withUnsafeBufferPointer { b in
            guard let base = b.baseAddress else { return }
            var i = max(scanFrom, start + 1)
            while i < limit, let hit = memchr(base + i, Int32(UInt8(ascii: "\n")), limit - i) {
                i = UnsafeRawPointer(hit).assumingMemoryBound(to: UInt8.self) - base
                sawLineEnd = true
                if b[i - 1] == UInt8(ascii: "\n") ||
                   (b[i - 1] == UInt8(ascii: "\r") && i >= start + 2 && b[i - 2] == UInt8(ascii: "\n")) {
                    end = i + 1
                    return
                }
                i += 1
            }
        }
        if end < 0 {
            scanFrom = max(start, limit - 2)
            let pending = limit - start
            // A CR at the very end may be the first half of the line's CRLF: not counted.
            let lineBytes = pending > 0 && buffer[limit - 1] == UInt8(ascii: "\r") ? pending - 1 : pending
            if lineBytes > limits.maxRequestLine, !sawLineEnd, !buffer[start..<limit].contains(UInt8(ascii: "\n")) {
                throw .requestLineTooLong(limit: limits.maxRequestLine)
            }
            if pending > limits.maxHeaderBytes { throw .headersTooLarge(limit: limits.maxHeaderBytes) }
            return nil
        }
        if end - start > limits.maxHeaderBytes { throw .headersTooLarge(limit: limits.maxHeaderBytes) }
        let head = buffer[start..<end]
        start = end
        scanFrom = end
        return try Self.parseHeadLines(head, limits: limits)
    }

    static func parseHeadLines(_ head: ArraySlice<UInt8>, limits: HTTPLimits) throws(HTTPError) -> HTTPRequest {
        var lines = HeadLines(head)
        guard let requestLine = lines.next() else { throw .badRequest("empty request") }
        if requestLine.count > limits.maxRequestLine { throw .requestLineTooLong(limit: limits.maxRequestLine) }

        // method SP target SP version: exactly two spaces.
        let space = UInt8(ascii: " ")
        guard let firstSpace = requestLine.firstIndex(of: space),
              let secondSpace = requestLine[(firstSpace + 1)...].firstIndex(of: space),
              !requestLine[(secondSpace + 1)...].contains(space) else { throw .badRequest("malformed request line") }
        let methodBytes = requestLine[..<firstSpace]
        let targetBytes = requestLine[(firstSpace + 1)..<secondSpace]
        let versionBytes = requestLine[(secondSpace + 1)...]
        guard !methodBytes.isEmpty, methodBytes.allSatisfy(isTokenByte) else { throw .badRequest("invalid method") }
        guard !targetBytes.isEmpty, targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .badRequest("invalid request target")
        }
        let form = try Self.requestTarget(targetBytes, method: methodBytes)
        let minor: Int
        if versionBytes.elementsEqual("HTTP/1.1".utf8) {
            minor = 1
        } else if versionBytes.elementsEqual("HTTP/1.0".utf8) {
            minor = 0
        } else {
            // RFC 9112 §2.3: "HTTP/" DIGIT "." DIGIT; a well-formed other version is 505.
            let v = Array(versionBytes)
            let isDigit = { (c: UInt8) in c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
            if v.count == 8, v.starts(with: "HTTP/".utf8), isDigit(v[5]), v[6] == UInt8(ascii: "."), isDigit(v[7]) {
                throw .unsupportedVersion
            }
            throw .badRequest("invalid HTTP version")
        }

        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(8)
        while let line = lines.next() {
            guard let first = line.first else { throw .badRequest("empty header line") }
            if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                throw .badRequest("obsolete header line folding")
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .badRequest("header without a colon") }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .badRequest("invalid header name") }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
            while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
            guard value.allSatisfy({ ($0 >= 0x20 && $0 != 0x7F) || $0 == 0x09 }) else {
                throw .badRequest("invalid header value")
            }
            headers.append((headerName(name), String(decoding: value, as: UTF8.self)))
            if headers.count > limits.maxHeaderCount { throw .tooManyHeaders(limit: limits.maxHeaderCount) }
        }
        if let authority = form.authority {
            // RFC 9112 §3.2.2: the Host received with an absolute-form target is ignored in
            // favour of the target's authority. Rewritten here, so that nothing downstream can
            // read the other one.
            headers.removeAll { $0.name == "host" }
            headers.append(("host", authority))
            if headers.count > limits.maxHeaderCount { throw .tooManyHeaders(limit: limits.maxHeaderCount) }
        }
        return HTTPRequest(method: String(decoding: methodBytes, as: UTF8.self), target: form.target,
                           versionMinor: minor, headers: headers)
    }

    /// The head's lines in order, each without its CR, the empty ones at its end left out (the
    /// blank line that ends a head). Walked in place: no array of lines.
    struct HeadLines {
        private var rest: ArraySlice<UInt8>
        private var done: Bool

        init(_ head: ArraySlice<UInt8>) {
            var end = head.endIndex
            while true {
                let lastBreak = head[head.startIndex..<end].lastIndex(of: UInt8(ascii: "\n"))
                let last = head[(lastBreak.map { $0 + 1 } ?? head.startIndex)..<end]
                guard last.isEmpty || last.elementsEqual(CollectionOfOne(UInt8(ascii: "\r"))) else { break }
                guard let lastBreak else { end = head.startIndex; break }
                end = lastBreak
            }
            rest = head[head.startIndex..<end]
            done = end == head.startIndex
        }

        mutating func next() -> ArraySlice<UInt8>? {
            guard !done else { return nil }
            var line: ArraySlice<UInt8>
            if let lf = rest.firstIndex(of: UInt8(ascii: "\n")) {
                line = rest[rest.startIndex..<lf]
                rest = rest[(lf + 1)...]
            } else {
                line = rest
                done = true
            }
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            return line
        }
    }

    // MARK: request target (RFC 9112 §3.2)

    /// The target in origin form (what routing reads), and the authority when it came in
    /// absolute form. Origin form (`/path?query`) and absolute form (`http://host/path?query`)
    /// are served; authority form (CONNECT) and asterisk form (OPTIONS *) are refused with 501:
    /// the hub is not a proxy and serves no server-wide OPTIONS.
    static func requestTarget(_ t: ArraySlice<UInt8>, method: ArraySlice<UInt8>) throws(HTTPError)
        -> (target: String, authority: String?) {
        if method.elementsEqual("CONNECT".utf8) { throw .notImplemented("CONNECT (the hub is not a proxy)") }
        if t.first == UInt8(ascii: "/") { return (String(decoding: t, as: UTF8.self), nil) }
        if t.count == 1, t.first == UInt8(ascii: "*") {
            guard method.elementsEqual("OPTIONS".utf8) else { throw .badRequest("the * request target is for OPTIONS only") }
            throw .notImplemented("OPTIONS *")
        }
        return try absoluteForm(t)
    }

    /// `http://authority[/path][?query]` (RFC 9112 §3.2.2, RFC 9110 §4.2): the scheme in any
    /// case, http or https only; a host is required; an empty path is "/".
    private static func absoluteForm(_ t: ArraySlice<UInt8>) throws(HTTPError) -> (target: String, authority: String?) {
        let notHTTP = HTTPError.badRequest("request target must be an absolute path or an http(s) URI")
        guard let colon = t.firstIndex(of: UInt8(ascii: ":")) else { throw notHTTP }
        let scheme = String(decoding: t[t.startIndex..<colon], as: UTF8.self).lowercased()
        guard scheme == "http" || scheme == "https" else { throw notHTTP }
        let afterScheme = t[(colon + 1)...]
        guard afterScheme.starts(with: "//".utf8) else { throw .badRequest("an http(s) request target needs //host") }
        let rest = afterScheme.dropFirst(2)
        let end = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? rest.endIndex
        let authority = rest[rest.startIndex..<end]
        try validateAuthority(authority)
        var target = String(decoding: rest[end...], as: UTF8.self)
        if !target.hasPrefix("/") { target = "/" + target }
        return (target, String(decoding: authority, as: UTF8.self))
    }

    /// host [":" port], host a reg-name, IPv4 address or bracketed IPv6 literal (RFC 3986
    /// §3.2). Userinfo (`user@host`) is refused: RFC 9110 §4.2.4 forbids sending it in an http(s)
    /// target and asks recipients to treat it as an error, since `http://trusted@evil/` is a
    /// way to make one host look like another (to a log reader, or to a proxy in front of us
    /// that parses it differently).
    private static func validateAuthority(_ a: ArraySlice<UInt8>) throws(HTTPError) {
        guard !a.contains(UInt8(ascii: "@")) else { throw .badRequest("userinfo (user@host) is not accepted in a request target") }
        var host = a
        var port: ArraySlice<UInt8> = []
        if a.first == UInt8(ascii: "[") {
            guard let close = a.firstIndex(of: UInt8(ascii: "]")) else { throw .badRequest("unterminated IPv6 literal in the request target") }
            let literal = a[(a.startIndex + 1)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ hexValue($0) != nil || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else {
                throw .badRequest("invalid IPv6 literal in the request target")
            }
            host = a[a.startIndex...close]
            let after = a[(close + 1)...]
            if !after.isEmpty {
                guard after.first == UInt8(ascii: ":") else { throw .badRequest("invalid authority in the request target") }
                port = after.dropFirst()
            }
        } else if let c = a.lastIndex(of: UInt8(ascii: ":")) {
            host = a[a.startIndex..<c]
            port = a[(c + 1)...]
        }
        guard !host.isEmpty else { throw .badRequest("the request target has no host") }
        guard port.count <= 5, port.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              port.reduce(0, { $0 * 10 + Int($1 - UInt8(ascii: "0")) }) <= 65_535 else {
            throw .badRequest("invalid port in the request target")
        }
        if host.first == UInt8(ascii: "[") { return }
        // reg-name = *( unreserved / pct-encoded / sub-delims )
        var i = host.startIndex
        while i < host.endIndex {
            let c = host[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < host.endIndex, hexValue(host[i + 1]) != nil, hexValue(host[i + 2]) != nil else {
                    throw .badRequest("invalid percent-encoding in the request target's host")
                }
                i += 3
                continue
            }
            guard isRegNameByte(c) else { throw .badRequest("invalid character in the request target's host") }
            i += 1
        }
    }

    private static func hexValue(_ c: UInt8) -> UInt8? { HTTPRequest.hexValue(c) }

    private static func isRegNameByte(_ c: UInt8) -> Bool {
        isAlphanumeric(c) || "-._~!$&'()*+,;=".utf8.contains(c)
    }

    /// Header names over 15 bytes that requests often carry. A String that long is on the heap;
    /// one of these is shared instead (a WebSocket upgrade carries two or three).
    private static let longNames: [String] = [
        "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
        "sec-websocket-protocol", "transfer-encoding", "x-forwarded-proto", "x-forwarded-host",
        "if-modified-since", "sec-ch-ua-mobile", "sec-ch-ua-platform", "upgrade-insecure-requests",
        "access-control-request-method", "access-control-request-headers",
    ]

    /// A header's name lowercased (a token is ASCII): one of `longNames` when it is one,
    /// otherwise written straight into its String.
    private static func headerName(_ name: ArraySlice<UInt8>) -> String {
        if name.count > 15 {
            for known in longNames where known.utf8.count == name.count
                && known.utf8.elementsEqual(name, by: { $0 == ASCII.lower($1) }) {
                return known
            }
        }
        return ASCII.lowercased(name)
    }

    private static func isTokenByte(_ c: UInt8) -> Bool {
        isAlphanumeric(c) || "!#$%&'*+-.^_`|~".utf8.contains(c)
    }

    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return false
        }
    }

    // MARK: body framing (RFC 9112 §6)

    private mutating func beginBody(_ request: HTTPRequest) throws(HTTPError) -> HTTPRequest? {
        // Most requests carry neither: asked first, so they build no lists.
        guard request.hasHeader("transfer-encoding") || request.hasHeader("content-length") else { return finish(request) }
        let te = request.headers("transfer-encoding")
        let cl = request.headers("content-length")
        if !te.isEmpty {
            guard cl.isEmpty else { throw .badRequest("both Transfer-Encoding and Content-Length") }
            let codings = te.flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces.lowercased() }
            guard codings == ["chunked"] else { throw .notImplemented("transfer coding \(te.joined(separator: ","))") }
            guard request.versionMinor == 1 else { throw .badRequest("chunked body in HTTP/1.0") }
            state = .chunkSize(request)
            noteExpect(request)
            return nil
        }
        guard !cl.isEmpty else { return finish(request) }
        let values = Set(cl.flatMap { $0.split(separator: ",") }.map { String($0.trimmingSpaces) })
        guard values.count == 1, let text = values.first, !text.isEmpty, text.count <= 18,
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let length = Int(text) else {
            throw .badRequest("invalid Content-Length")
        }
        guard length <= limits.maxBodyBytes else { throw .bodyTooLarge(limit: limits.maxBodyBytes) }
        if length == 0 { return finish(request) }
        state = .body(request, remaining: length)
        noteExpect(request)
        return nil
    }

    private mutating func noteExpect(_ request: HTTPRequest) {
        if request.header("expect")?.lowercased() == "100-continue", request.versionMinor == 1 {
            wantsContinue = true
        }
    }
}
