// An HTTP/1.1 response as a value, and its encoding to bytes.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Send `Connection: close` and close after writing.
    public var closeConnection: Bool

    public init(status: HTTPStatus, headers: [(String, String)] = [], body: [UInt8] = [],
                closeConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.closeConnection = closeConnection
    }

    public static func json(_ status: HTTPStatus, _ json: String, closeConnection: Bool = false) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")],
                     body: Array(json.utf8), closeConnection: closeConnection)
    }

    public static func text(_ status: HTTPStatus, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", contentType)], body: Array(text.utf8))
    }

    /// `{"error":{"code":...,"message":...}}` with the contract's code word for the status.
    public static func error(_ status: HTTPStatus, _ message: String, code: ErrorCode? = nil,
                             closeConnection: Bool = false) -> HTTPResponse {
        let body = "{\"error\":{\"code\":\(JSONText.quote((code ?? status.errorCode).rawValue)),\"message\":\(JSONText.quote(message))}}"
        return .json(status, body, closeConnection: closeConnection)
    }

    /// 405 with the `Allow` header every 405 must carry.
    public static func methodNotAllowed(allow: String) -> HTTPResponse {
        var r = HTTPResponse.error(.methodNotAllowed, "method not allowed; allowed: \(allow)")
        r.headers.append(("Allow", allow))
        return r
    }

    public static func error(_ error: HTTPError) -> HTTPResponse {
        .error(error.status, error.message, closeConnection: true)
    }

    /// Wire bytes. `includeBody` is false for HEAD.
    public func encoded(includeBody: Bool = true) -> [UInt8] {
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\n"
        var hasLength = false
        for (name, value) in headers {
            if name.lowercased() == "content-length" { hasLength = true }
            head += "\(name): \(value)\r\n"
        }
        if !hasLength && status.code != 101 && status.code != 204 && status.code >= 200 {
            head += "Content-Length: \(body.count)\r\n"
        }
        if closeConnection { head += "Connection: close\r\n" }
        head += "\r\n"
        var out = Array(head.utf8)
        if includeBody { out.append(contentsOf: body) }
        return out
    }
}

/// Minimal JSON text helpers for the places that write JSON by hand (error bodies).
public enum JSONText {
    public static func quote(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
        return out
    }
}
