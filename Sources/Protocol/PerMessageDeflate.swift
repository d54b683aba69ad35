// permessage-deflate (RFC 7692) negotiation: parse the client's offers from
// Sec-WebSocket-Extensions, accept the first one the hub can honour, and say which
// parameters both sides then use. Pure string work; the codec is in Deflater/Inflater.

public struct DeflateParameters: Equatable, Sendable {
    /// The hub resets its compressor after every message.
    public var serverNoContextTakeover = false
    /// The client resets its compressor after every message, so the hub resets its inflater.
    public var clientNoContextTakeover = false
    /// LZ77 window the hub may use when compressing (8...15).
    public var serverMaxWindowBits = 15
    /// Window the client compresses with, when the offer named one (8...15).
    public var clientMaxWindowBits: Int? = nil

    public init() {}
}

public struct DeflatePolicy: Sendable {
    /// Accept permessage-deflate at all.
    public var enabled = true
    /// Always answer with server_no_context_takeover (RFC 7692 §7.1.1.1 lets the server add it):
    /// saves the compressor's window per connection at some cost in ratio.
    public var forceServerNoContextTakeover = false
    public init(enabled: Bool = true, forceServerNoContextTakeover: Bool = false) {
        self.enabled = enabled
        self.forceServerNoContextTakeover = forceServerNoContextTakeover
    }
}

public enum PerMessageDeflate {
    public static let token = "permessage-deflate"

    /// The first acceptable offer among the header values, with the response header value.
    public static func negotiate(offers headerValues: [String], policy: DeflatePolicy)
        -> (parameters: DeflateParameters, response: String)? {
        guard policy.enabled else { return nil }
        for value in headerValues {
            for ext in splitOutsideQuotes(value, on: ",") {
                let parts = splitOutsideQuotes(ext, on: ";").map { $0.trimmed }
                guard let name = parts.first, name.lowercased() == token else { continue }
                guard var params = parseOffer(parts.dropFirst()) else { continue }
                if policy.forceServerNoContextTakeover { params.serverNoContextTakeover = true }
                return (params, response(for: params))
            }
        }
        return nil
    }

    /// Parses one offer's parameters; nil when any is unknown, repeated or out of range
    /// (such an offer is declined, not failed, per RFC 7692 §5).
    static func parseOffer(_ params: ArraySlice<String>) -> DeflateParameters? {
        var result = DeflateParameters()
        var seen = Set<String>()
        for param in params {
            let kv = param.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { String($0).trimmed }
            if kv.count == 2 && kv[1].isEmpty { return nil } // "key=" with no value
            guard let key = kv.first?.lowercased(), !key.isEmpty else { return nil }
            guard seen.insert(key).inserted else { return nil }
            var value: String? = kv.count == 2 ? kv[1] : nil
            if let v = value, v.count >= 2, v.hasPrefix("\""), v.hasSuffix("\"") {
                value = String(v.dropFirst().dropLast())
            }
            switch key {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                result.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                result.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let v = value, let bits = windowBits(v) else { return nil }
                result.serverMaxWindowBits = bits
            case "client_max_window_bits":
                if let v = value {
                    guard let bits = windowBits(v) else { return nil }
                    result.clientMaxWindowBits = bits
                } else {
                    result.clientMaxWindowBits = 15
                }
            default:
                return nil
            }
        }
        return result
    }

    static func response(for p: DeflateParameters) -> String {
        var s = token
        if p.serverNoContextTakeover { s += "; server_no_context_takeover" }
        if p.clientNoContextTakeover { s += "; client_no_context_takeover" }
        if p.serverMaxWindowBits != 15 { s += "; server_max_window_bits=\(p.serverMaxWindowBits)" }
        if let c = p.clientMaxWindowBits, c != 15 { s += "; client_max_window_bits=\(c)" }
        return s
    }

    private static func windowBits(_ s: String) -> Int? {
        // 1*DIGIT without leading zeros, 8 to 15.
        guard !s.isEmpty, s.count <= 2, s.allSatisfy({ $0.isASCII && $0.isNumber }),
              !s.hasPrefix("0"), let n = Int(s), (8...15).contains(n) else { return nil }
        return n
    }

    private static func splitOutsideQuotes(_ s: String, on sep: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var quoted = false
        for ch in s {
            if ch == "\"" { quoted.toggle() }
            if ch == sep && !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(ch)
            }
        }
        parts.append(current)
        return parts.map { $0.trimmed }.filter { !$0.isEmpty }
    }
}

extension String {
    var trimmed: String {
        // Most values come trimmed already (the head's parser strips them): no copy then.
        let u = utf8
        if let f = u.first, let l = u.last, f != 0x20, f != 0x09, l != 0x20, l != 0x09 { return self }
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
