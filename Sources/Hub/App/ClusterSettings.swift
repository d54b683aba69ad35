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
        for scheme in ["postgres://", "postgresql://"] where v.hasPrefix(scheme) {
            guard v.count > scheme.count else { throw Configuration.Invalid(description: "\(label) \(scheme) needs a host") }
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
enum BrokerSetting {
    static func parse(_ v: String, _ label: String) throws(Configuration.Invalid) -> RedisEndpoint {
        // Everything before the last @ is a credential (redis://PASSWORD@host is valid too).
        let shown = redactingPassword(v, userInfoIsSecret: true)
        // Pub/sub ignores database numbers: two hubs on one Redis are kept apart by
        // --cluster-name. (Looked for after the credentials: a password may hold a slash.)
        let afterScheme = v.hasPrefix("redis://") ? v.dropFirst("redis://".count) : Substring(v)
        let hostPart = afterScheme.lastIndex(of: "@").map { afterScheme[afterScheme.index(after: $0)...] } ?? afterScheme
        if let slash = hostPart.firstIndex(of: "/"), hostPart.index(after: slash) < hostPart.endIndex {
            throw Configuration.Invalid(description: "\(label): a database number has no effect on pub/sub; give each cluster its own --cluster-name instead")
        }
        do {
            return try RedisEndpoint(url: v)
        } catch {
            let why = if case .invalidURL(let reason) = error { reason } else { "\(error)" }
            throw Configuration.Invalid(description: "\(label) expects local or redis://[:PASSWORD@]HOST:PORT (\(why)), got '\(shown)'")
        }
    }
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

/// A URL with its secrets replaced by ***: the password of `user:password@` (all of the
/// user info when `userInfoIsSecret`, as in redis://PASSWORD@host), and a `password=` query
/// parameter (libpq takes one).
func redactingPassword(_ url: String, userInfoIsSecret: Bool = false) -> String {
    var out = url
    if let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") {
        let auth = url[scheme.upperBound..<at]
        if let colon = auth.firstIndex(of: ":") {
            out = String(url[..<auth.index(after: colon)]) + "***" + String(url[at...])
        } else if userInfoIsSecret {
            out = String(url[..<scheme.upperBound]) + "***" + String(url[at...])
        }
    }
    guard let query = out.firstIndex(of: "?") else { return out }
    let params = out[out.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false).map { p in
        p.lowercased().hasPrefix("password=") ? "password=***" : String(p)
    }
    return String(out[...query]) + params.joined(separator: "&")
}

private extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
