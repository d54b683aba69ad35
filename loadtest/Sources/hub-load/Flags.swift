import Glibc

// Reads `--flag value` pairs for the scenarios' option parsers: every bad value is a
// UsageError (exit 2) naming the flag and the range it must be in.
struct Flags {
    private let args: [String]
    private var i = -1

    init(_ args: ArraySlice<String>) { self.args = Array(args) }

    /// The next flag, or nil at the end.
    mutating func next() -> String? {
        i += 1
        return i < args.count ? args[i] : nil
    }

    mutating func value(_ flag: String) throws(UsageError) -> String {
        i += 1
        guard i < args.count else { throw UsageError(message: "\(flag) needs a value") }
        return args[i]
    }

    mutating func int(_ flag: String, _ range: ClosedRange<Int>) throws(UsageError) -> Int {
        let v = try value(flag)
        guard let n = Int(v.replacingOccurrences(of: "_", with: "")), range.contains(n) else {
            throw UsageError(message: "\(flag) must be an integer in \(range.lowerBound)...\(range.upperBound), got \(v)")
        }
        return n
    }

    mutating func seconds(_ flag: String, _ range: ClosedRange<Double>) throws(UsageError) -> Double {
        let v = try value(flag)
        guard let d = Double(v), range.contains(d) else {
            throw UsageError(message: "\(flag) must be seconds in \(range.lowerBound)...\(range.upperBound), got \(v)")
        }
        return d
    }
}

/// A `ws://` or `http://` URL whose host is in 127.0.0.0/8 (or `localhost`), with an explicit
/// port: the generator cannot be pointed at someone else's server by mistake.
struct LoopbackURL {
    var host: String
    var port: Int
    /// The path and query ("" when the URL has none).
    var path: String

    static func parse(_ url: String, scheme: String, flag: String) throws(UsageError) -> LoopbackURL {
        guard url.hasPrefix(scheme + "://") else {
            throw UsageError(message: "\(flag) must start with \(scheme):// (TLS is not supported), got \(url)")
        }
        let rest = url.dropFirst(scheme.count + 3)
        let authority = rest.prefix { $0 != "/" }
        let path = String(rest.dropFirst(authority.count))
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]),
              (1...65535).contains(port) else {
            throw UsageError(message: "\(flag) needs an explicit port, got \(url)")
        }
        let h = String(authority[..<colon])
        let host = h == "localhost" ? "127.0.0.1" : h
        var addr = in_addr()
        guard inet_pton(AF_INET, host, &addr) == 1 else {
            throw UsageError(message: "\(flag) host must be an IPv4 loopback address, got \(h)")
        }
        guard UInt32(bigEndian: addr.s_addr) >> 24 == 127 else {
            throw UsageError(message: "refusing to connect to \(h): only 127.0.0.0/8 is allowed")
        }
        return LoopbackURL(host: host, port: port, path: path)
    }
}
