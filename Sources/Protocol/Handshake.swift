import COpenSSL
import Foundation

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
        guard let key = r.header("sec-websocket-key")?.trimmed,
              let decoded = Data(base64Encoded: key), decoded.count == 16 else {
            return .failure(.init(.badRequest, "invalid Sec-WebSocket-Key"))
        }
        if !options.allowedOrigins.isEmpty {
            guard let origin = r.header("origin"), options.allowedOrigins.contains(origin) else {
                return .failure(.init(.forbidden, "origin not allowed"))
            }
        }
        var head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        head += "Sec-WebSocket-Accept: \(acceptValue(forKey: key))\r\n"
        var deflate: DeflateParameters?
        if let agreed = PerMessageDeflate.negotiate(offers: r.headers("sec-websocket-extensions"), policy: options.deflate) {
            deflate = agreed.parameters
            head += "Sec-WebSocket-Extensions: \(agreed.response)\r\n"
        }
        head += "\r\n"
        return .success(HandshakeAccept(response: Array(head.utf8), deflate: deflate))
    }

    /// base64(SHA-1(key + GUID)), §4.2.2.
    public static func acceptValue(forKey key: String) -> String {
        let input = Array((key + guid).utf8)
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        input.withUnsafeBufferPointer { inBuf in
            digest.withUnsafeMutableBufferPointer { out in
                _ = SHA1(inBuf.baseAddress, inBuf.count, out.baseAddress)
            }
        }
        return Data(digest).base64EncodedString()
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
