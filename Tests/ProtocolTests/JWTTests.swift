import XCTest
@testable import Protocol

// HS256 tokens: sign/verify round trips, a token made independently with Python, and every
// refusal: algorithm, signature, shape, expiry and each claim rule.

final class JWTTests: XCTestCase {

    private let secret = Array("montrose-test-secret-0123456789".utf8)
    private let now: Int64 = 1_732_530_000

    /// Made with Python's hmac/hashlib/base64 for `secret` and
    /// {"sub":"u1","role":"client","name":"Ann","exp":4102444800} (compact JSON).
    private let pythonToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        + ".eyJzdWIiOiJ1MSIsInJvbGUiOiJjbGllbnQiLCJuYW1lIjoiQW5uIiwiZXhwIjo0MTAyNDQ0ODAwfQ"
        + ".aTub7NBdR7Ej9K6DktPrv_5QPIeG7w2naYGgo0p1axc"

    private var verifier: JWTVerifier { JWTVerifier(secret: secret) }

    /// A token with any header and payload text, signed with `key` (the verifier's secret
    /// unless given), for the cases JWTSigner would never produce.
    private func token(header: String = #"{"alg":"HS256","typ":"JWT"}"#, payload: String, key: [UInt8]? = nil) -> String {
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        let mac = HS256.mac(key: key ?? secret, Array(signingInput.utf8)[...]) ?? []
        return signingInput + "." + Base64URL.encode(mac)
    }

    /// A payload with valid claims, `changes` applied (nil removes a claim).
    private func payload(_ changes: [String: JSON?] = [:]) -> String {
        var o: JSONObject = ["sub": "u1", "role": "client", "name": "Ann", "exp": .int(now + 3600)]
        for (k, v) in changes.sorted(by: { $0.key < $1.key }) { o[k] = v }
        return JSON.object(o).text
    }

    private func assertRefused(_ token: String, _ expected: JWTError, now: Int64? = nil, verifier: JWTVerifier? = nil,
                               file: StaticString = #filePath, line: UInt = #line) {
        do {
            let claims = try (verifier ?? self.verifier).verify(token, now: now ?? self.now)
            XCTFail("expected refusal \(expected), token verified to \(claims)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, "wrong refusal", file: file, line: line)
        }
    }

    private func assertAccepted(_ token: String, now: Int64? = nil, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try verifier.verify(token, now: now ?? self.now)
        } catch {
            XCTFail("expected the token to verify, got \(error)", file: file, line: line)
        }
    }

    // MARK: round trip and known vector

    func testSignedTokenVerifiesToTheSameClaims() throws {
        let all = TokenClaims(sub: "agent.7@site-a_b", role: .websiteAgent, name: "Zoë \"Z\" 😀", exp: now + 60,
                              services: ["website", "support"], iat: now - 5)
        let minimal = TokenClaims(sub: "u1", role: .admin, name: "A", exp: now)
        for claims in [all, minimal] {
            let t = JWTSigner(secret: secret).sign(claims)
            XCTAssertEqual(try verifier.verify(t, now: now), claims, "expected the signed claims back")
        }
        let none = TokenClaims(sub: "u2", role: .marketingAgent, name: "B", exp: now, services: [])
        XCTAssertEqual(try verifier.verify(JWTSigner(secret: secret).sign(none), now: now).services, [],
                       "expected an empty services list to stay empty, not become nil")
    }

    func testSignerWritesTheStandardHeader() {
        let t = JWTSigner(secret: secret).sign(TokenClaims(sub: "u1", role: .client, name: "Ann", exp: 1))
        XCTAssertEqual(t.split(separator: ".").first, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
                       #"expected base64url of {"alg":"HS256","typ":"JWT"}"#)
    }

    func testPythonMadeTokenVerifies() throws {
        let claims = try verifier.verify(pythonToken, now: now)
        XCTAssertEqual(claims, TokenClaims(sub: "u1", role: .client, name: "Ann", exp: 4_102_444_800),
                       "expected the claims Python signed")
        XCTAssertNil(claims.services, "expected no services claim to mean all services")
        XCTAssertNil(claims.iat, "expected no iat")
    }

    func testSignerReproducesThePythonToken() {
        let t = JWTSigner(secret: secret).sign(TokenClaims(sub: "u1", role: .client, name: "Ann", exp: 4_102_444_800))
        XCTAssertEqual(t, pythonToken, "expected byte-identical output to the Python reference")
    }

    // MARK: signature

    func testFlippedSignatureCharacterIsBadSignature() {
        var chars = Array(pythonToken)
        let i = chars.count - 5
        chars[i] = chars[i] == "A" ? "B" : "A"
        assertRefused(String(chars), .badSignature)
    }

    func testTamperedPayloadIsBadSignature() {
        let parts = pythonToken.split(separator: ".")
        let forged = Base64URL.encode(Array(#"{"sub":"u1","role":"admin","name":"Ann","exp":4102444800}"#.utf8))
        assertRefused(parts[0] + "." + forged + "." + parts[2], .badSignature)
    }

    func testWrongSecretIsBadSignature() {
        assertRefused(token(payload: payload(), key: Array("another-secret".utf8)), .badSignature)
        assertRefused(pythonToken, .badSignature, verifier: JWTVerifier(secret: Array("montrose-test-secret-012345678".utf8)))
    }

    func testSignatureIsCheckedBeforeClaims() {
        // Broken claims under a wrong key: the answer is the signature, not the claim.
        let t = token(payload: #"{"sub":"has space","role":"root","exp":"soon"}"#, key: Array("attacker".utf8))
        assertRefused(t, .badSignature)
        // Likewise a payload that is not even JSON is never looked at without a valid signature.
        assertRefused(token(payload: "x", key: Array("attacker".utf8)), .badSignature)
    }

    func testShortOrEmptySignatureIsBadSignature() {
        let parts = pythonToken.split(separator: ".")
        assertRefused(parts[0] + "." + parts[1] + ".", .badSignature)
        assertRefused(parts[0] + "." + parts[1] + "." + parts[2].dropLast(3), .badSignature) // 30 bytes
    }

    func testEmptySecretVerifiesNothing() {
        let t = JWTSigner(secret: []).sign(TokenClaims(sub: "u1", role: .client, name: "Ann", exp: now))
        assertRefused(t, .badSignature, verifier: JWTVerifier(secret: []))
        assertRefused(pythonToken, .badSignature, verifier: JWTVerifier(secret: []))
    }

    // MARK: algorithm and header

    func testAlgNoneUnsignedTokenIsUnsupportedAlgorithm() {
        let unsigned = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "."
            + Base64URL.encode(Array(payload().utf8)) + "."
        assertRefused(unsigned, .unsupportedAlgorithm("none"))
    }

    func testOtherAlgorithmsAreUnsupported() {
        assertRefused(token(header: #"{"alg":"HS512","typ":"JWT"}"#, payload: payload()), .unsupportedAlgorithm("HS512"))
        assertRefused(token(header: #"{"alg":"hs256","typ":"JWT"}"#, payload: payload()), .unsupportedAlgorithm("hs256"))
        assertRefused(token(header: #"{"alg":"RS256"}"#, payload: payload()), .unsupportedAlgorithm("RS256"))
        assertRefused(token(header: #"{"typ":"JWT"}"#, payload: payload()), .unsupportedAlgorithm("missing"))
        assertRefused(token(header: #"{"alg":256}"#, payload: payload()), .unsupportedAlgorithm("256"))
        assertRefused(token(header: #"{"alg":null}"#, payload: payload()), .unsupportedAlgorithm("null"))
    }

    func testHeaderWithoutTypIsAccepted() {
        assertAccepted(token(header: #"{"alg":"HS256"}"#, payload: payload()))
    }

    func testHeaderWithOtherTypOrCritIsMalformed() {
        assertRefused(token(header: #"{"alg":"HS256","typ":"JWS"}"#, payload: payload()), .malformed("typ must be JWT"))
        assertRefused(token(header: #"{"alg":"HS256","typ":"jwt"}"#, payload: payload()), .malformed("typ must be JWT"))
        assertRefused(token(header: #"{"alg":"HS256","crit":["exp"]}"#, payload: payload()),
                      .malformed("crit header not supported"))
    }

    // MARK: shape

    func testWrongNumberOfPartsIsMalformed() {
        let parts = pythonToken.split(separator: ".")
        assertRefused(parts[0] + "." + parts[1], .malformed("expected three dot-separated parts, got 2"))
        assertRefused(pythonToken + ".x", .malformed("expected three dot-separated parts, got 4"))
        assertRefused("", .malformed("expected three dot-separated parts, got 1"))
        assertRefused("..", .malformed("empty header"))
        assertRefused(parts[0] + ".." + parts[2], .malformed("empty payload"))
    }

    func testBadBase64IsMalformed() {
        let parts = pythonToken.split(separator: ".")
        assertRefused("e!J9." + parts[1] + "." + parts[2], .malformed("header is not base64url"))
        assertRefused(parts[0] + "=." + parts[1] + "." + parts[2], .malformed("header is not base64url"))
        assertRefused(parts[0] + "." + parts[1] + "." + parts[2] + "=", .malformed("signature is not base64url"))
        assertRefused(parts[0] + "." + parts[1] + ".a+b/", .malformed("signature is not base64url"))
        // A payload that is not base64url under a valid signature still fails as malformed.
        let signed = token(payload: payload())
        let bad = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e"
        let mac = HS256.mac(key: secret, Array(bad.utf8)[...]) ?? []
        assertRefused(bad + "." + Base64URL.encode(mac), .malformed("payload is not base64url"))
        assertAccepted(signed)
    }

    func testHeaderOrPayloadThatIsNotAJSONObjectIsMalformed() {
        let header = token(header: #"["HS256"]"#, payload: payload())
        assertRefused(header, .malformed("header is not a JSON object"))
        assertRefused(token(payload: "[1]"), .malformed("payload is not a JSON object"))
        do {
            _ = try verifier.verify(token(payload: #"{"sub":"u1",}"#), now: now)
            XCTFail("expected a payload with a trailing comma refused")
        } catch {
            guard case .malformed(let why) = error, why.hasPrefix("payload is not JSON") else {
                return XCTFail("expected malformed payload, got \(error)")
            }
        }
    }

    func testTokenOver4096BytesIsMalformed() {
        let big = token(payload: payload(["pad": .string(String(repeating: "x", count: 3700))]))
        XCTAssertGreaterThan(big.utf8.count, 4096, "test setup: token must exceed the limit")
        assertRefused(big, .malformed("token over 4096 bytes"))
        assertRefused(String(repeating: "a", count: 5000), .malformed("token over 4096 bytes"))
        let fits = token(payload: payload(["pad": .string(String(repeating: "x", count: 2500))]))
        XCTAssertLessThanOrEqual(fits.utf8.count, 4096, "test setup: token must fit the limit")
        assertAccepted(fits)
    }

    // MARK: time

    func testExpiryHonoursLeeway() {
        let exp = now
        let t = token(payload: payload(["exp": .int(exp)]))
        assertAccepted(t, now: exp + 30)
        assertRefused(t, .expired, now: exp + 31)
        assertRefused(t, .expired, now: exp + 1, verifier: JWTVerifier(secret: secret, leewaySeconds: 0))
    }

    func testExtremeExpDoesNotOverflow() {
        assertAccepted(token(payload: payload(["exp": .int(Int64.max)])), now: Int64.max)
        assertRefused(token(payload: payload(["exp": .int(Int64.min)])), .expired)
    }

    func testMissingOrNonIntegerExpIsInvalidClaim() {
        assertRefused(token(payload: payload(["exp": nil])), .invalidClaim("exp missing"))
        assertRefused(token(payload: payload(["exp": "4102444800"])), .invalidClaim("exp must be an integer"))
        assertRefused(token(payload: payload(["exp": 4102444800.5])), .invalidClaim("exp must be an integer"))
        assertRefused(token(payload: payload(["exp": .null])), .invalidClaim("exp must be an integer"))
    }

    func testIatInTheFutureBeyondLeewayIsInvalid() {
        assertAccepted(token(payload: payload(["iat": .int(now + 30)])))
        assertRefused(token(payload: payload(["iat": .int(now + 31)])), .invalidClaim("iat in the future"))
        assertRefused(token(payload: payload(["iat": "yesterday"])), .invalidClaim("iat must be an integer"))
    }

    // MARK: claims

    func testUnknownOrMissingRoleIsInvalid() {
        assertRefused(token(payload: payload(["role": "root"])), .invalidClaim(#"role "root" is unknown"#))
        assertRefused(token(payload: payload(["role": "Admin"])), .invalidClaim(#"role "Admin" is unknown"#))
        assertRefused(token(payload: payload(["role": nil])), .invalidClaim("role missing"))
        assertRefused(token(payload: payload(["role": 1])), .invalidClaim("role must be a string"))
        for role in Role.allCases {
            assertAccepted(token(payload: payload(["role": .string(role.rawValue)])))
        }
    }

    func testSubRules() {
        let rule = JWTError.invalidClaim("sub must be 1-64 characters of A-Za-z0-9_.@-")
        assertRefused(token(payload: payload(["sub": "has space"])), rule)
        assertRefused(token(payload: payload(["sub": .string(String(repeating: "a", count: 65))])), rule)
        assertRefused(token(payload: payload(["sub": ""])), rule)
        assertRefused(token(payload: payload(["sub": "jürgen"])), rule)
        assertRefused(token(payload: payload(["sub": "a/b"])), rule)
        assertRefused(token(payload: payload(["sub": nil])), .invalidClaim("sub missing"))
        assertRefused(token(payload: payload(["sub": 7])), .invalidClaim("sub must be a string"))
        assertAccepted(token(payload: payload(["sub": .string(String(repeating: "a", count: 64))])))
        assertAccepted(token(payload: payload(["sub": "A-z_0.9@x"])))
    }

    func testNameRules() {
        assertAccepted(token(payload: payload(["name": .string(String(repeating: "é", count: 100))])))
        assertAccepted(token(payload: payload(["name": "Zoë 日本 👩‍👩‍👧"])))
        assertRefused(token(payload: payload(["name": .string(String(repeating: "é", count: 101))])),
                      .invalidClaim("name must be 1-100 characters"))
        assertRefused(token(payload: payload(["name": ""])), .invalidClaim("name must be 1-100 characters"))
        assertRefused(token(payload: payload(["name": "a\nb"])), .invalidClaim("name contains control characters"))
        assertRefused(token(payload: payload(["name": "a\u{85}b"])), .invalidClaim("name contains control characters"))
        assertRefused(token(payload: payload(["name": ["Ann"]])), .invalidClaim("name must be a string"))
    }

    func testServicesRules() {
        assertAccepted(token(payload: payload(["services": ["marketing", "website", "courses", "support"]])))
        assertAccepted(token(payload: payload(["services": []])))
        assertRefused(token(payload: payload(["services": ["website", "billing"]])),
                      .invalidClaim(#"services holds unknown service "billing""#))
        assertRefused(token(payload: payload(["services": ["website", "website"]])),
                      .invalidClaim(#"services lists "website" twice"#))
        assertRefused(token(payload: payload(["services": [1]])), .invalidClaim("services must be an array of strings"))
        assertRefused(token(payload: payload(["services": "website"])), .invalidClaim("services must be an array of strings"))
        assertRefused(token(payload: payload(["services": .null])), .invalidClaim("services must be an array of strings"))
    }

    func testDuplicateClaimIsMalformed() {
        let t = token(payload: #"{"sub":"u1","role":"client","role":"admin","name":"A","exp":4102444800}"#)
        assertRefused(t, .malformed(#"payload is not JSON: duplicate key "role""#))
    }

    func testEveryErrorHasAMessage() {
        for e: JWTError in [.malformed("x"), .unsupportedAlgorithm("none"), .badSignature, .expired, .invalidClaim("sub")] {
            XCTAssertFalse(e.message.isEmpty, "expected a message for \(e)")
        }
    }

    // MARK: base64url

    func testBase64URLMatchesRFC4648Vectors() {
        let vectors = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
                       ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64URL.encode(Array(plain.utf8)), encoded, "expected unpadded encoding of \(plain)")
            XCTAssertEqual(Base64URL.decode(encoded), Array(plain.utf8), "expected \(encoded) to decode")
        }
        XCTAssertEqual(Base64URL.encode([0xFB, 0xFF, 0xBF]), "-_-_", "expected the URL-safe alphabet")
    }

    func testBase64URLDecodeAcceptsPaddingAndRejectsTheImpossible() {
        XCTAssertEqual(Base64URL.decode("Zg=="), Array("f".utf8), "expected padded Zg== accepted")
        XCTAssertEqual(Base64URL.decode("Zm8="), Array("fo".utf8), "expected padded Zm8= accepted")
        XCTAssertEqual(Base64URL.decode("Zm9v"[...]), Array("foo".utf8), "expected a Substring accepted")
        for bad in ["Z", "Zm9vY", "Zg=", "Zg===", "Z===", "Zm8==", "=", "Zh", "Zm9", "+/8=", "ab/c", "Zm 9v", "Zm9v\n", "Zg==Zg=="] {
            XCTAssertNil(Base64URL.decode(bad), "expected \(bad.debugDescription) rejected")
        }
    }

    func testBase64URLRoundTripsRandomBytes() {
        var rng = SplitMix64(seed: 0xB64)
        for length in 0..<100 {
            let bytes = rng.bytes(length)
            let encoded = Base64URL.encode(bytes)
            XCTAssertFalse(encoded.contains("="), "expected no padding")
            XCTAssertEqual(Base64URL.decode(encoded), bytes, "expected round trip of \(length) bytes")
        }
    }
}
