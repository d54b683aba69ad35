import COpenSSL

// The WebSocket opening handshake (RFC 6455 §4.2): validate an upgrade request and build the
// 101 response, negotiating permessage-deflate. Pure: request in, response or refusal out.

public struct HandshakeOptions: Sendable {
    /// Allowed Origin header values; empty allows any origin (non-browser clients send none).
    public var allowedOrigins: [String] = []
    public var deflate = DeflatePolicy()
    public init(allowedOrigins: [String] = [], deflate: DeflatePolicy = DeflatePolicy()) {
        self.allowedOrigins = allowedOrigins
        self.deflate = deflate
    }
}

public struct HandshakeAccept: Sendable {
    /// The 101 response bytes.
    public var response: [UInt8]
    /// Agreed permessage-deflate parameters, nil when not in use.
    public var deflate: DeflateParameters?
}

public enum Handshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Whether the request asks for a WebSocket at all (then `accept` gives the verdict).
    public static func isUpgradeRequest(_ r: HTTPRequest) -> Bool {
        r.headerHasToken("upgrade", "websocket")
    }

    public static func accept(_ r: HTTPRequest, options: HandshakeOptions) -> Result<HandshakeAccept, HandshakeRefusal> {
        guard r.method == "GET" else { return .failure(.init(.methodNotAllowed, "WebSocket upgrade needs GET", extra: [("Allow", "GET")])) }
        guard r.versionMinor == 1 else { return .failure(.init(.badRequest, "WebSocket upgrade needs HTTP/1.1")) }
        guard r.header("host") != nil else { return .failure(.init(.badRequest, "missing Host")) }
        guard r.headerHasToken("upgrade", "websocket") else {
            return .failure(.init(.upgradeRequired, "this path serves WebSocket only",
                                  extra: [("Upgrade", "websocket"), ("Connection", "Upgrade")]))
        }
        guard r.headerHasToken("connection", "upgrade") else {
            return .failure(.init(.badRequest, "Connection header lacks upgrade"))
        }
        guard r.header("sec-websocket-version")?.trimmed == "13" else {
            return .failure(.init(.upgradeRequired, "only WebSocket version 13 is served",
                                  extra: [("Sec-WebSocket-Version", "13")]))
        }
        guard let key = r.header("sec-websocket-key")?.trimmed, isKey(key) else {
            return .failure(.init(.badRequest, "invalid Sec-WebSocket-Key"))
        }
        if !options.allowedOrigins.isEmpty {
            guard let origin = r.header("origin"), options.allowedOrigins.contains(origin) else {
                return .failure(.init(.forbidden, "origin not allowed"))
            }
        }
        // Built as bytes, the accept value written in place: every WebSocket connect passes here.
        var head: [UInt8] = []
        head.reserveCapacity(192)
        head += response101
        head += "Sec-WebSocket-Accept: ".utf8
        appendAcceptValue(forKey: key, to: &head)
        head += "\r\n".utf8
        var deflate: DeflateParameters?
        if let agreed = PerMessageDeflate.negotiate(offers: r.headers("sec-websocket-extensions"), policy: options.deflate) {
            deflate = agreed.parameters
            head += "Sec-WebSocket-Extensions: ".utf8
            head += agreed.response.utf8
            head += "\r\n".utf8
        }
        head += "\r\n".utf8
        return .success(HandshakeAccept(response: head, deflate: deflate))
    }

    private static let response101 = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n".utf8)

    /// A Sec-WebSocket-Key is base64 of 16 bytes (§4.1): 22 characters of the standard alphabet
    /// and `==`, the only spelling of that length.
    static func isKey(_ key: String) -> Bool {
        let u = key.utf8
        guard u.count == 24, u.suffix(2).elementsEqual("==".utf8) else { return false }
        return u.prefix(22).allSatisfy(Base64.isAlphabetByte)
    }

    /// base64(SHA-1(key + GUID)), §4.2.2.
    public static func acceptValue(forKey key: String) -> String {
        var out: [UInt8] = []
        appendAcceptValue(forKey: key, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The key and GUID, then their digest, in one temporary buffer (on the stack for a key
    /// of any sane length): no array per connect.
    private static func appendAcceptValue(forKey key: String, to out: inout [UInt8]) {
        let (k, g) = (key.utf8, guid.utf8)
        let n = k.count + g.count
        withUnsafeTemporaryAllocation(byteCount: n + Digest.sha1.size, alignment: 1) { buffer in
            let input = UnsafeMutableRawBufferPointer(rebasing: buffer[..<n])
            input.copyBytes(from: k)
            UnsafeMutableRawBufferPointer(rebasing: input[k.count...]).copyBytes(from: g)
            let digest = UnsafeMutableRawBufferPointer(rebasing: buffer[n...])
            // SHA-1 fails only without a working OpenSSL, which the hub refuses at start.
            guard Digest.sha1.hash(UnsafeRawBufferPointer(input), into: digest) else { preconditionFailure("SHA-1 unavailable") }
            Base64.appendPadded(UnsafeRawBufferPointer(digest), to: &out)
        }
    }
}

public struct HandshakeRefusal: Error, Sendable {
    public var status: HTTPStatus
    public var message: String
    public var extraHeaders: [(String, String)]
    init(_ status: HTTPStatus, _ message: String, extra: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.extraHeaders = extra
    }
    public var response: HTTPResponse {
        var r = HTTPResponse.error(status, message, closeConnection: true)
        r.headers.append(contentsOf: extraHeaders)
        return r
    }
}
