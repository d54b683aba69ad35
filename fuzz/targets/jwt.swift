// Fuzz target: JWTVerifier (HS256 tokens), JWTSigner and Base64URL.
//
// A random token almost never carries a valid signature, so the input is used three ways:
//  1. as a token, verified with a fixed secret (and with extreme clocks and leeway);
//  2. as JSON text for the claims: signed with the secret under the standard header, so the
//     verifier gets past the signature and the claim rules are what is fuzzed;
//  3. split at its first NUL byte into header JSON and claims JSON, both signed, so the
//     header rules (alg, typ, crit) are fuzzed too.
// Whatever verifies must satisfy the claim rules, and signing its claims again must verify
// to the same claims. Base64URL must round-trip the input. JWTError is a valid outcome.

private let secret = Array("montrose-fuzz-secret-0123456789abcdef".utf8)
private let now: Int64 = 1_750_000_000
private let verifier = JWTVerifier(secret: secret, leewaySeconds: 30)
/// Saturating arithmetic at the edges: exp + leeway and now + leeway must never trap.
private let lenientVerifier = JWTVerifier(secret: secret, leewaySeconds: .max)
private let signer = JWTSigner(secret: secret)
private let standardHeader = Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)

/// A token for arbitrary header and payload bytes, signed with the fuzz secret.
private func signedToken(header: [UInt8], payload: [UInt8]) -> String {
    let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(payload)
    let mac = HS256.mac(key: secret, Array(signingInput.utf8)[...]) ?? []
    return signingInput + "." + Base64URL.encode(mac)
}

/// Verifies `token`; what verifies must follow the rules and survive sign → verify unchanged.
private func verifyAndCheck(_ token: String) {
    for (v, clock, strict) in [(verifier, now, true), (lenientVerifier, Int64.min, false), (lenientVerifier, Int64.max, false)] {
        let claims: TokenClaims
        do {
            claims = try v.verify(token, now: clock)
        } catch {
            _ = error.message
            continue
        }
        fuzzCheck(UserID.isValid(claims.sub), "sub \(claims.sub.debugDescription) accepted")
        fuzzCheck(DisplayName.isValid(claims.name), "name \(claims.name.debugDescription) accepted")
        if strict {
            fuzzCheck(claims.exp >= now - 30, "expired token accepted (exp \(claims.exp))")
            if let iat = claims.iat { fuzzCheck(iat <= now + 30, "iat in the future accepted (\(iat))") }
        }
        if let services = claims.services {
            fuzzCheck(Set(services).count == services.count, "services repeated")
            fuzzCheck(services.allSatisfy(Vocabulary.serviceSet.contains), "unknown service accepted")
        }
        let resigned = signer.sign(claims)
        do {
            let back = try v.verify(resigned, now: clock)
            fuzzCheck(back == claims, "sign → verify changed the claims: \(claims) vs \(back)")
        } catch {
            fuzzFail("our own signature on accepted claims refused: \(error) for \(claims)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))

    // Base64URL: encode then decode is the identity; what decodes re-encodes to itself
    // (one spelling per byte string, padding aside).
    let encoded = Base64URL.encode(bytes)
    fuzzCheck(Base64URL.decode(encoded) == bytes, "Base64URL round trip failed for \(size) bytes")
    if let decoded = Base64URL.decode(bytes: bytes[...]) {
        let unpadded = bytes.prefix { $0 != UInt8(ascii: "=") }
        fuzzCheck(Array(Base64URL.encode(decoded).utf8) == Array(unpadded), "two spellings decode to the same bytes")
    }

    // 1. The input as a token.
    verifyAndCheck(String(decoding: bytes, as: UTF8.self))

    // 2. The input as the claims of a correctly signed token.
    verifyAndCheck(signedToken(header: standardHeader, payload: bytes))

    // 3. Header NUL claims, both chosen by the input.
    if let nul = bytes.firstIndex(of: 0) {
        verifyAndCheck(signedToken(header: Array(bytes[..<nul]), payload: Array(bytes[(nul + 1)...])))
    }
    return 0
}
