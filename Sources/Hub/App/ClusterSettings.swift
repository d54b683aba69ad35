import Foundation
import Glibc

// The settings that decide one node or several: where the truth lives (`--store`), how nodes
// hear each other (`--broker`), and what this node is called (`--node-id`, `--cluster-name`).

/// `--store sqlite:PATH | postgres://…`. Without the flag: SQLite in the data folder.
enum StoreLocation: Sendable, Equatable {
    case sqlite(path: String)
    /// A libpq connection URI (postgres:// or postgresql://).
    case postgres(url: String)

    static func parse(_ v: String, _ label: String) throws(Configuration.Invalid) -> StoreLocation {
        if v.hasPrefix("sqlite:") {
            let path = String(v.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw Configuration.Invalid(description: "\(label) sqlite: needs a file path (sqlite:/var/lib/montrose/hub.sqlite)") }
            return .sqlite(path: path)
        }
        if v.hasPrefix("postgres://") || v.hasPrefix("postgresql://") {
            guard v.count > "postgres://".count else { throw Configuration.Invalid(description: "\(label) postgres:// needs a host") }
            return .postgres(url: v)
        }
        throw Configuration.Invalid(description: "\(label) expects sqlite:PATH or postgres://USER@HOST:PORT/DATABASE, got '\(redactingPassword(v))'")
    }

    /// For logs and the start line: the password in a URL replaced by ***.
    var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let url): return redactingPassword(url)
        }
    }
}

/// One Redis instance of `--broker redis://[:PASSWORD@]HOST:PORT` (repeatable: channels are
/// sharded over the instances, in the order given, which must be the same on every node).
struct RedisAddress: Sendable, Equatable {
    var host: String
    var port: Int
    var password: String?

    static func parse(_ v: String, _ label: String) throws(Configuration.Invalid) -> RedisAddress {
        let shape = "\(label) expects local or redis://[:PASSWORD@]HOST:PORT, got '\(redactingPassword(v))'"
        guard v.hasPrefix("redis://") else { throw Configuration.Invalid(description: shape) }
        var rest = Substring(v.dropFirst("redis://".count))
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let auth = rest[..<at]
            rest = rest[rest.index(after: at)...]
            // redis://:pw@host or redis://user:pw@host: the part after the colon is the password.
            let secret = auth.firstIndex(of: ":").map { auth[auth.index(after: $0)...] } ?? auth
            guard !secret.isEmpty else { throw Configuration.Invalid(description: shape) }
            password = String(secret)
        }
        // Pub/sub ignores database numbers: two hubs on one Redis are kept apart by --cluster-name.
        guard !rest.contains("/") || rest.hasSuffix("/") else {
            throw Configuration.Invalid(description: "\(label): a database number has no effect on pub/sub; give each cluster its own --cluster-name instead")
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
            throw Configuration.Invalid(description: shape)
        }
        let host = String(rest[..<colon])
        guard !host.isEmpty else { throw Configuration.Invalid(description: shape) }
        return RedisAddress(host: host, port: port, password: password)
    }

    var description: String { "redis://\(password == nil ? "" : ":***@")\(host):\(port)" }
}

/// Node ids and cluster names: they end up in Redis keys, channel names and session ids.
enum NodeName {
    static func check(_ v: String, _ label: String) throws(Configuration.Invalid) -> String {
        let allowed = v.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F || b == 0x2E
        }
        guard !v.isEmpty, v.utf8.count <= 64, allowed else {
            throw Configuration.Invalid(description: "\(label) takes 1 to 64 letters, digits, '.', '-' or '_', got '\(v)'")
        }
        return v
    }

    /// The default node id: the host name and six random hex digits, different on every start
    /// (a node restarted under the same id would take over its predecessor's presence instead).
    static func generated() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0
            ? String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "node"
        let safe = String(host.unicodeScalars.map { s -> Character in
            s.isASCII && (CharacterSet.alphanumerics.contains(s) || s == "-" || s == "_") ? Character(s) : "-"
        }.prefix(40))
        return "\(safe.isEmpty ? "node" : safe)-\(String(UInt32.random(in: 0...0xFFFFFF), radix: 16).leftPadded(to: 6))"
    }
}

/// A URL with its password (the part between "user:" and "@") replaced by ***.
func redactingPassword(_ url: String) -> String {
    guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else { return url }
    let auth = url[scheme.upperBound..<at]
    guard let colon = auth.firstIndex(of: ":") else { return url }
    return String(url[..<auth.index(after: colon)]) + "***" + String(url[at...])
}

private extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
