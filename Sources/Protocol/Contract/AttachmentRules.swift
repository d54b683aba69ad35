// What a message's `attachments` may hold (docs/protocol.md "Attachments"). The hub stores
// references to files in the platform's file store, never files, so the rules are about the
// reference: its URL must point at an allowed origin (a message cannot pass a link to anywhere
// else off as an attachment), its name is made safe to display, its size and type are checked.
// The same rules for the WebSocket `send` and the bridge's message post.

/// An origin: scheme, lower-case host and port (`https://files.example.com:8443`), the default
/// port left out. Parsed from `--attachment-origin` and from each attachment URL alike.
public struct AttachmentOrigin: Hashable, Sendable, CustomStringConvertible {
    public let scheme: String
    public let host: String
    public let port: Int?

    public var description: String { port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)" }

    /// The origin of an absolute http(s) URL; nil for anything else: another scheme, user info
    /// (`https://files.example.com@elsewhere/` names elsewhere), an empty or malformed host or
    /// port, white space or control characters anywhere.
    public static func of(url: String) -> (origin: AttachmentOrigin, rest: Substring)? {
        guard !url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F || $0 == "\\" }) else { return nil }
        let lower = url.lowercased()
        let scheme: String
        if lower.hasPrefix("https://") { scheme = "https" } else if lower.hasPrefix("http://") { scheme = "http" } else { return nil }
        let afterScheme = url.dropFirst(scheme.count + 3)
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        var host = Substring(authority)
        var port: Int?
        if host.hasPrefix("[") { return nil } // IPv6 literals are not file-store origins
        if let colon = host.lastIndex(of: ":") {
            let digits = host[host.index(after: colon)...]
            guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let p = Int(digits), (1...65535).contains(p) else { return nil }
            host = host[..<colon]
            port = (scheme == "https" && p == 443) || (scheme == "http" && p == 80) ? nil : p
        }
        guard !host.isEmpty, host.utf8.count <= 253,
              host.unicodeScalars.allSatisfy(isHostScalar) else { return nil }
        return (AttachmentOrigin(scheme: scheme, host: host.lowercased(), port: port), afterScheme[authorityEnd...])
    }

    /// An origin given alone (`--attachment-origin`): a URL with no path beyond `/`, no query.
    public static func parse(_ text: String) -> AttachmentOrigin? {
        guard let (origin, rest) = of(url: text), rest.isEmpty || rest == "/" else { return nil }
        return origin
    }
}

/// A letter, digit, `-` or `.` of an ASCII host name.
private func isHostScalar(_ s: Unicode.Scalar) -> Bool {
    switch s {
    case "a"..."z", "A"..."Z", "0"..."9", "-", ".": return true
    default: return false
    }
}

/// The allow-list and the scheme rule: https only, plain http too in development mode.
public struct AttachmentPolicy: Sendable, Equatable {
    public var origins: Set<AttachmentOrigin>
    public var allowsHTTP: Bool
    public init(origins: Set<AttachmentOrigin>, allowsHTTP: Bool) {
        self.origins = origins
        self.allowsHTTP = allowsHTTP
    }
}

extension Params {
    /// `attachments`: absent or null is none; otherwise 1–10 objects `{url, name, size,
    /// content_type}`, each checked against `policy`. A refusal names the field
    /// (`attachments[2].url: …`).
    public func attachments(_ name: String, policy: AttachmentPolicy) throws(Failure) -> [MessageAttachment] {
        guard let v = object[name], !v.isNull else { return [] }
        guard let list = v.arrayValue else { throw Failure.invalid(name, "must be an array of attachments") }
        guard list.count <= ContractLimits.maxAttachments else {
            throw Failure.invalid(name, "may hold at most \(ContractLimits.maxAttachments) attachments")
        }
        var out: [MessageAttachment] = []
        out.reserveCapacity(list.count)
        for (i, item) in list.enumerated() {
            let field = "\(name)[\(i)]"
            guard let o = item.objectValue else { throw Failure.invalid(field, "must be an object {url, name, size, content_type}") }
            let url = try Self.text(o, "url", field: field, max: ContractLimits.maxAttachmentURL)
            guard let (origin, _) = AttachmentOrigin.of(url: url) else {
                throw Failure.invalid("\(field).url", "must be an absolute https URL with a host and no user info")
            }
            guard origin.scheme == "https" || policy.allowsHTTP else {
                throw Failure.invalid("\(field).url", "must be https")
            }
            guard policy.origins.contains(origin) else {
                throw Failure.invalid("\(field).url", policy.origins.isEmpty
                    ? "attachments are not accepted: the hub has no --attachment-origin"
                    : "must be on an allowed origin (\(policy.origins.map(\.description).sorted().joined(separator: ", ")))")
            }
            let displayName = AttachmentName.sanitised(try Self.text(o, "name", field: field, max: ContractLimits.maxAttachmentName))
            guard !displayName.isEmpty else { throw Failure.invalid("\(field).name", "must contain a printable character") }
            guard case .int(let size)? = o["size"] else { throw Failure.invalid("\(field).size", "must be an integer number of bytes") }
            guard (0...ContractLimits.maxAttachmentSize).contains(size) else {
                throw Failure.invalid("\(field).size", "must be from 0 to \(ContractLimits.maxAttachmentSize)")
            }
            let type = try Self.text(o, "content_type", field: field, max: ContractLimits.maxAttachmentContentType)
            guard let mediaType = MediaType.normalised(type) else {
                throw Failure.invalid("\(field).content_type", "must be a media type such as image/png")
            }
            out.append(MessageAttachment(url: url, name: displayName, size: size, contentType: mediaType))
        }
        return out
    }

    /// A required string field of an attachment, 1–`max` characters.
    private static func text(_ o: JSONObject, _ key: String, field: String, max: Int) throws(Failure) -> String {
        guard let v = o[key], !v.isNull else { throw Failure.invalid("\(field).\(key)", "is required") }
        guard let s = v.stringValue else { throw Failure.invalid("\(field).\(key)", "must be a string") }
        guard !s.isEmpty else { throw Failure.invalid("\(field).\(key)", "must not be empty") }
        guard s.utf8.count <= max * 4, s.count <= max else { throw Failure.invalid("\(field).\(key)", "must have at most \(max) characters") }
        return s
    }
}

/// A file name made safe to show: no control or bidirectional-override characters (which can
/// make `invoice‮fdp.exe` read as `invoiceexe.pdf`), no path separators, no leading or trailing
/// white space or dots.
public enum AttachmentName {
    public static func sanitised(_ name: String) -> String {
        var scalars = String.UnicodeScalarView()
        for s in name.unicodeScalars {
            switch s.value {
            case 0...0x1F, 0x7F...0x9F, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0xFEFF: continue
            case 0x2F, 0x5C: scalars.append("_") // / and \
            default: scalars.append(s)
            }
        }
        return String(scalars).trimming(" .\u{A0}")
    }
}

private extension String {
    func trimming(_ set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

/// `type/subtype` with RFC 9110 token characters, lower-cased, parameters kept out (a charset
/// says nothing the platform needs, and a parameter is room to smuggle text).
public enum MediaType {
    public static func normalised(_ text: String) -> String? {
        let base = text.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let parts = base.trimming(" ").lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(isToken) }) else { return nil }
        return "\(parts[0])/\(parts[1])"
    }

    private static func isToken(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }
}
