import Glibc
import Protocol

// Where a Redis instance is, from a `redis://[[user]:password@]host:port` URL. The host must be
// an IPv4 literal or `localhost`: resolving a name would block the loop thread that connects.

struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    let host: String
    let port: Int
    let username: String?
    let password: String?

    /// `host:port`, the same on every node for the same instance: what the shard ring hashes.
    var address: String { "\(host):\(port)" }
    /// The URL without its password, for logs.
    var description: String { "redis://\(password == nil ? "" : "***@")\(address)" }

    init(host: String, port: Int, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
    }

    init(url: String) throws(RedisError) {
        guard url.hasPrefix("redis://") else { throw .invalidURL("expected redis://host:port") }
        var rest = Substring(url.dropFirst("redis://".count))
        var user: String?
        var pass: String?
        // The credentials first (up to the last '@'): a password may hold '/' or '@'.
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let u = credentials[..<colon]
                user = u.isEmpty ? nil : String(u)
                pass = String(credentials[credentials.index(after: colon)...])
            } else {
                pass = String(credentials)
            }
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] } // a db number: pub/sub ignores it
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]),
              (1...65_535).contains(port) else { throw .invalidURL("expected a port: redis://host:port") }
        var host = String(rest[..<colon])
        if host == "localhost" { host = "127.0.0.1" }
        var probe = in_addr()
        guard inet_pton(AF_INET, host, &probe) == 1 else {
            throw .invalidURL("the host must be an IPv4 address (no name lookup on a loop thread)")
        }
        self.init(host: host, port: port, username: user, password: pass)
    }
}

/// What a Redis command or connection can fail with. Completions get exactly one of these or
/// a value.
enum RedisError: Error, Equatable, Sendable {
    case invalidURL(String)
    /// The connection dropped (or was dropped by the client) while the command was in flight.
    case connectionLost
    /// Sent while the connection was down between attempts.
    case notConnected
    /// The owner closed the connection.
    case closed
    /// Too much output waits for Redis to read it (`Options.maxQueuedOutputBytes`).
    case backlogFull
    /// Connect and handshake did not finish within the deadline.
    case connectTimeout
    /// Redis answered with an error reply.
    case server(String)
    /// Redis's bytes broke RESP (or passed a limit): the stream is dropped.
    case protocolViolation(RESPError)
}
