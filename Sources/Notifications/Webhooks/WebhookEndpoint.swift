// Where webhooks go: `--webhook URL`, parsed once at start: http:// or https:// (TLS with the
// certificate verified, WebhookTLS.swift).
public struct WebhookEndpoint: Sendable, Equatable {
    public var tls: Bool
    public var host: String
    public var port: Int
    /// The request target: the URL's path and query ("/" when the URL has none).
    public var target: String

    public init(tls: Bool = false, host: String, port: Int, target: String) {
        self.tls = tls
        self.host = host
        self.port = port
        self.target = target
    }

    /// The Host header: the port only when it is not the scheme's; an IPv6 address in brackets.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? h : "\(h):\(port)"
    }

    /// host:port, for logs (the path and query may carry a backend's token: never logged).
    public var logName: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Parses `http[s]://host[:port][/path][?query]`; the error says what is wrong without
    /// repeating the URL (it may hold credentials).
    public static func parse(_ url: String) -> Result<WebhookEndpoint, WebhookEndpointError> {
        let lower = url.lowercased()
        let tls = lower.hasPrefix("https://")
        guard tls || lower.hasPrefix("http://") else { return .failure(.notHTTP) }
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .failure(.badCharacters) }
        let rest = url.dropFirst(tls ? "https://".count : "http://".count)
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.hasPrefix("?") { target = "/" + target }
        if target.isEmpty { target = "/" }
        if target.contains("#") { target = String(target[..<(target.firstIndex(of: "#") ?? target.endIndex)]) }
        guard !authority.contains("@") else { return .failure(.userInfo) }
        let host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return .failure(.badHost) }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return .failure(.badHost) }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
            if host.contains(":") { return .failure(.badHost) }
        } else {
            host = authority
        }
        guard !host.isEmpty, host.count <= 253 else { return .failure(.badHost) }
        var port = tls ? 443 : 80
        if let portText {
            guard let p = Int(portText), (1...65_535).contains(p), portText.count <= 5 else { return .failure(.badPort) }
            port = p
        }
        return .success(WebhookEndpoint(tls: tls, host: String(host), port: port, target: target))
    }
}

public enum WebhookEndpointError: Error, Equatable, Sendable, CustomStringConvertible {
    case notHTTP, badCharacters, userInfo, badHost, badPort

    public var description: String {
        switch self {
        case .notHTTP: return "must be an http:// or https:// URL"
        case .badCharacters: return "must be a URL of visible ASCII characters (percent-encode the rest)"
        case .userInfo: return "must not carry user:password@ (the request is signed with --webhook-secret instead)"
        case .badHost: return "has no valid host"
        case .badPort: return "has a port outside 1–65535"
        }
    }
}
