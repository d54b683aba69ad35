import COpenSSL

// Identity tokens: HS256 JSON Web Tokens (RFC 7519 / RFC 7515) carrying the hub's claims —
// who (`sub`, `name`), as what (`role`), for which services, until when. Verification
// trusts nothing before the signature has checked out, accepts HS256 alone (never `none`,
// never an algorithm the token picks for itself), and then holds every claim to the rules.
// Also the unpadded base64url (RFC 4648 §5) the tokens are written in.

public struct TokenClaims: Equatable, Sendable {
    /// Subject: 1–64 characters of A-Z a-z 0-9 _ . @ -
    public var sub: String
    public var role: Role
    /// Display name: 1–100 characters, no control characters.
    public var name: String
    /// Expiry, unix seconds.
    public var exp: Int64
    /// The services the token grants; nil grants all of them.
    public var services: [String]?
    /// Issued at, unix seconds.
    public var iat: Int64?

    public init(sub: String, role: Role, name: String, exp: Int64,
                services: [String]? = nil, iat: Int64? = nil) {
        self.sub = sub
        self.role = role
        self.name = name
        self.exp = exp
        self.services = services
        self.iat = iat
    }
}

/// Why a token was refused. The message is for logs; clients get a plain 401 either way.
public enum JWTError: Error, Equatable, Sendable {
    /// Not a JWT at all: wrong shape, bad base64url, not JSON, over the size limit.
    case malformed(String)
    /// The header's `alg` is not exactly "HS256" (the value found, or "missing").
    case unsupportedAlgorithm(String)
    case badSignature
    case expired
    /// A claim missing, of the wrong type or outside its rules; the text names the claim.
    case invalidClaim(String)

    public var message: String {
        switch self {
        case .malformed(let why): return "malformed token: \(why)"
        case .unsupportedAlgorithm(let alg): return "unsupported token algorithm \(alg)"
        case .badSignature: return "token signature does not match"
        case .expired: return "token expired"
        case .invalidClaim(let why): return "invalid token claim: \(why)"
        }
    }
}

public struct JWTVerifier: Sendable {
    /// Longer tokens are refused before any decoding or hashing is spent on them.
    public static let maxTokenBytes = 4096

    /// nil for an empty secret: nothing verifies.
    private let key: HS256Key?
    private let leeway: Int64

    /// `leewaySeconds` allows for clock skew between the issuer and the hub, both for `exp`
    /// and `iat` (a negative leeway counts as 0). An empty secret verifies nothing: every token fails with badSignature,
    /// since a token signed with an empty key could be made by anyone.
    public init(secret: [UInt8], leewaySeconds: Int64 = 30) {
        self.key = HS256Key(secret)
        self.leeway = max(0, leewaySeconds)
    }

    public func verify(_ token: String, now: Int64) throws(JWTError) -> TokenClaims {
        guard token.utf8.count <= JWTVerifier.maxTokenBytes else {
            throw .malformed("token over \(JWTVerifier.maxTokenBytes) bytes")
        }
        // Read in place, each part decoded into a buffer on the stack: a token is verified on
        // every WebSocket connect, and copying it and its parts into arrays was most of the cost.
        var token = token
        let result = token.withUTF8 { bytes in
            Result { () throws(JWTError) in try verify(bytes, now: now) }
        }
        return try result.get()
    }

    private func verify(_ bytes: UnsafeBufferPointer<UInt8>, now: Int64) throws(JWTError) -> TokenClaims {
        var dots = 0, firstDot = 0, secondDot = 0
        for (i, c) in bytes.enumerated() where c == UInt8(ascii: ".") {
            dots += 1
            if dots == 1 { firstDot = i } else if dots == 2 { secondDot = i }
        }
        guard dots == 2 else { throw .malformed("expected three dot-separated parts, got \(dots + 1)") }
        let headerPart = UnsafeBufferPointer(rebasing: bytes[..<firstDot])
        let payloadPart = UnsafeBufferPointer(rebasing: bytes[(firstDot + 1)..<secondDot])
        let signaturePart = UnsafeBufferPointer(rebasing: bytes[(secondDot + 1)...])
        guard !headerPart.isEmpty else { throw .malformed("empty header") }
        guard !payloadPart.isEmpty else { throw .malformed("empty payload") }

        // The header first: it decides whether there is anything to verify at all. The form
        // every issuer of ours writes is known as it is, without a parse.
        if !headerPart.elementsEqual(Self.usualHeader) { try checkHeader(headerPart) }

        // The signature, before anything in the payload is believed.
        let same = try Self.decodePart(signaturePart, what: "signature") { signature throws(JWTError) -> Bool in
            let signingInput = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[..<secondDot]))
            guard signature.count == 32, let key else { throw .badSignature }
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { expected in
                key.mac(signingInput, into: UnsafeMutableRawBufferPointer(expected))
                    && CRYPTO_memcmp(signature.baseAddress, expected.baseAddress, 32) == 0
            }
        }
        guard same else { throw .badSignature }

        return try Self.decodePart(payloadPart, what: "payload") { raw throws(JWTError) in
            try claims(from: Self.jsonObject(raw, what: "payload"), now: now)
        }
    }

    /// `{"alg":"HS256","typ":"JWT"}` in base64url, as JWTSigner writes it.
    private static let usualHeader = Array(JWTSigner.encodedHeader.utf8)

    private func checkHeader(_ headerPart: UnsafeBufferPointer<UInt8>) throws(JWTError) {
        let header = try Self.decodePart(headerPart, what: "header") { raw throws(JWTError) in
            try Self.jsonObject(raw, what: "header")
        }
        switch header["alg"] {
        case .string("HS256"): break
        // What the token named goes into logs: cut short, since it is the sender's text.
        case .string(let other): throw .unsupportedAlgorithm(String(other.prefix(32)))
        case nil: throw .unsupportedAlgorithm("missing")
        case let other?: throw .unsupportedAlgorithm(String(other.text.prefix(32)))
        }
        if let typ = header["typ"], typ != .string("JWT") { throw .malformed("typ must be JWT") }
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; this verifier
        // understands none, so a token that requires one is refused.
        if header["crit"] != nil { throw .malformed("crit header not supported") }
    }

    // MARK: decoding

    /// One base64url part of the token, decoded into a temporary buffer (on the stack when the
    /// thread has room: a part is under 4 KiB) and handed to `body`. Padding is refused: RFC
    /// 7515 §2 omits it, and one spelling per token keeps tokens from being altered while still
    /// verifying.
    private static func decodePart<T>(_ part: UnsafeBufferPointer<UInt8>, what: String,
                                      _ body: (UnsafeRawBufferPointer) throws(JWTError) -> T) throws(JWTError) -> T {
        // Typed as bytes: the JSON parser reads the decoded part as UInt8.
        let result = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Base64URL.maxDecodedCount(part.count) + 1) { out in
            Result { () throws(JWTError) -> T in
                guard !part.contains(UInt8(ascii: "=")),
                      let n = Base64URL.decode(part, into: UnsafeMutableRawBufferPointer(out)) else {
                    throw .malformed("\(what) is not base64url")
                }
                return try body(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: out[..<n])))
            }
        }
        return try result.get()
    }

    private static func jsonObject(_ raw: UnsafeRawBufferPointer, what: String) throws(JWTError) -> JSONObject {
        let json: JSON
        do {
            // The hub's claims nest two deep (an object holding `services`); 8 leaves room for
            // an issuer's extra claims without letting a token be mostly brackets.
            json = try JSONParser.parse(raw, maxDepth: 8, maxBytes: JWTVerifier.maxTokenBytes)
        } catch {
            throw .malformed("\(what) is not JSON: \(error.message)")
        }
        guard let object = json.objectValue else { throw .malformed("\(what) is not a JSON object") }
        return object
    }

    // MARK: claims

    private func claims(from payload: JSONObject, now: Int64) throws(JWTError) -> TokenClaims {
        let sub = try requiredString(payload, "sub")
        guard UserID.isValid(sub) else {
            throw .invalidClaim("sub must be 1-64 characters of A-Za-z0-9_.@-")
        }

        let roleText = try requiredString(payload, "role")
        guard let role = Role(rawValue: roleText) else { throw .invalidClaim("role \(JSONText.quote(roleText)) is unknown") }

        let name = try requiredString(payload, "name")
        guard DisplayName.hasValidLength(name) else { throw .invalidClaim("name must be 1-100 characters") }
        guard DisplayName.isValid(name) else { throw .invalidClaim("name contains control characters") }

        guard let expValue = payload["exp"] else { throw .invalidClaim("exp missing") }
        guard let exp = expValue.intValue else { throw .invalidClaim("exp must be an integer") }
        if now > Self.saturatingAdd(exp, leeway) { throw .expired }

        var iat: Int64?
        if let iatValue = payload["iat"] {
            guard let v = iatValue.intValue else { throw .invalidClaim("iat must be an integer") }
            if v > Self.saturatingAdd(now, leeway) { throw .invalidClaim("iat in the future") }
            iat = v
        }

        var services: [String]?
        if let servicesValue = payload["services"] {
            // Present means a list; null is not read as "absent", which would grant everything.
            guard let list = servicesValue.arrayValue else { throw .invalidClaim("services must be an array of strings") }
            var seen = Set<String>()
            var names: [String] = []
            for item in list {
                guard let s = item.stringValue else { throw .invalidClaim("services must be an array of strings") }
                guard Vocabulary.serviceSet.contains(s) else {
                    throw .invalidClaim("services holds unknown service \(JSONText.quote(s))")
                }
                guard seen.insert(s).inserted else { throw .invalidClaim("services lists \(JSONText.quote(s)) twice") }
                names.append(s)
            }
            services = names
        }

        return TokenClaims(sub: sub, role: role, name: name, exp: exp, services: services, iat: iat)
    }

    private func requiredString(_ payload: JSONObject, _ claim: String) throws(JWTError) -> String {
        guard let value = payload[claim] else { throw .invalidClaim("\(claim) missing") }
        guard let s = value.stringValue else { throw .invalidClaim("\(claim) must be a string") }
        return s
    }

    /// `exp + leeway` for an `exp` near Int64.max must not trap.
    private static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }
}

public struct JWTSigner: Sendable {
    private let secret: [UInt8]

    public init(secret: [UInt8]) { self.secret = secret }

    /// `{"alg":"HS256","typ":"JWT"}`, encoded once.
    static let encodedHeader = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    /// A signed token for `claims`, written as given (the issuer is trusted to pass valid
    /// claims; the verifier is where the rules are enforced). With an empty secret the
    /// signature part is empty, and no verifier accepts the token.
    public func sign(_ claims: TokenClaims) -> String {
        var w = JSONWriter(capacity: 160)
        w.beginObject()
        w.key("sub"); w.string(claims.sub)
        w.key("role"); w.string(claims.role.rawValue)
        w.key("name"); w.string(claims.name)
        w.key("exp"); w.int(claims.exp)
        if let iat = claims.iat { w.key("iat"); w.int(iat) }
        if let services = claims.services {
            w.key("services")
            w.beginArray()
            for s in services { w.string(s) }
            w.endArray()
        }
        w.endObject()

        let signingInput = JWTSigner.encodedHeader + "." + Base64URL.encode(w.bytes)
        let mac = HS256.mac(key: secret, Array(signingInput.utf8)[...]) ?? []
        return signingInput + "." + Base64URL.encode(mac)
    }
}

/// HMAC-SHA256 (RFC 2104).
enum HS256 {
    /// The 32-byte MAC; nil for an empty key (a MAC anyone can compute protects nothing) or
    /// when OpenSSL fails.
    static func mac(key: [UInt8], _ data: ArraySlice<UInt8>) -> [UInt8]? {
        HS256Key(key)?.mac(data)
    }
}

/// An HMAC-SHA256 key with its two padded blocks hashed once: each MAC copies the two prepared
/// SHA-256 states and hashes only the message. OpenSSL's one-shot HMAC() looked the algorithm up
/// and keyed it again on every call: 3.5 µs a MAC against 0.66 µs this way, for a JWT verified
/// on every WebSocket connect. Shared by threads: after `init` the two states are only copied.
final class HS256Key: @unchecked Sendable {
    private static let blockSize = 64
    private let inner: OpaquePointer
    private let outer: OpaquePointer

    /// nil for an empty key, or when OpenSSL cannot hash.
    init?(_ key: [UInt8]) {
        guard !key.isEmpty, let sha256 = Digest.sha256.md else { return nil }
        // A key longer than a block is its hash (RFC 2104 §2); a shorter one is padded with zeros.
        var block = key.count > Self.blockSize ? (Digest.sha256.hash(key) ?? []) : key
        guard !block.isEmpty else { return nil }
        block += [UInt8](repeating: 0, count: Self.blockSize - block.count)
        guard let inner = Self.keyedState(sha256, block.map { $0 ^ 0x36 }) else { return nil }
        guard let outer = Self.keyedState(sha256, block.map { $0 ^ 0x5c }) else {
            EVP_MD_CTX_free(inner)
            return nil
        }
        self.inner = inner
        self.outer = outer
    }

    deinit {
        EVP_MD_CTX_free(inner)
        EVP_MD_CTX_free(outer)
    }

    /// The 32-byte MAC of `data`; nil when OpenSSL fails.
    func mac(_ data: ArraySlice<UInt8>) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: 32)
        let ok = data.withUnsafeBytes { data in out.withUnsafeMutableBytes { mac(data, into: $0) } }
        return ok ? out : nil
    }

    /// Writes the 32-byte MAC of `data` to the start of `out`; false when OpenSSL fails.
    func mac(_ data: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Bool {
        guard out.count >= 32, let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        let hash = out.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var length: UInt32 = 0
        // H(K ^ opad || H(K ^ ipad || data)); the inner hash goes where the MAC will.
        guard EVP_MD_CTX_copy_ex(ctx, inner) == 1,
              EVP_DigestUpdate(ctx, data.baseAddress, data.count) == 1,
              EVP_DigestFinal_ex(ctx, hash, &length) == 1, length == 32,
              EVP_MD_CTX_copy_ex(ctx, outer) == 1,
              EVP_DigestUpdate(ctx, hash, 32) == 1,
              EVP_DigestFinal_ex(ctx, hash, &length) == 1 else { return false }
        return length == 32
    }

    private static func keyedState(_ md: OpaquePointer, _ padded: [UInt8]) -> OpaquePointer? {
        guard let ctx = EVP_MD_CTX_new() else { return nil }
        guard EVP_DigestInit_ex(ctx, md, nil) == 1,
              padded.withUnsafeBytes({ EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) }) == 1 else {
            EVP_MD_CTX_free(ctx)
            return nil
        }
        return ctx
    }
}
