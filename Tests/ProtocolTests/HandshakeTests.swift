import XCTest
@testable import Protocol

final class HandshakeTests: XCTestCase {

    static let sampleKey = "dGhlIHNhbXBsZSBub25jZQ=="
    static let sampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    /// A request as the parser would produce it from `head` (request line and headers, no blank line).
    private func request(_ head: String, file: StaticString = #filePath, line: UInt = #line) throws -> HTTPRequest {
        var parser = HTTPRequestParser()
        parser.append(Array((head + "\r\n\r\n").utf8))
        return try XCTUnwrap(try parser.next(), "fixture: expected the request head to parse", file: file, line: line)
    }

    private func upgrade(method: String = "GET", version: String = "HTTP/1.1",
                         host: String? = "example.com", upgrade: String? = "websocket",
                         connection: String? = "Upgrade", wsVersion: String? = "13",
                         key: String? = HandshakeTests.sampleKey, origin: String? = nil,
                         extensions: [String] = []) throws -> HTTPRequest {
        var lines = ["\(method) /ws \(version)"]
        if let host { lines.append("Host: \(host)") }
        if let upgrade { lines.append("Upgrade: \(upgrade)") }
        if let connection { lines.append("Connection: \(connection)") }
        if let wsVersion { lines.append("Sec-WebSocket-Version: \(wsVersion)") }
        if let key { lines.append("Sec-WebSocket-Key: \(key)") }
        if let origin { lines.append("Origin: \(origin)") }
        for e in extensions { lines.append("Sec-WebSocket-Extensions: \(e)") }
        return try request(lines.joined(separator: "\r\n"))
    }

    private func assertRefused(_ r: HTTPRequest, status: Int, options: HandshakeOptions = HandshakeOptions(),
                               file: StaticString = #filePath, line: UInt = #line) -> HandshakeRefusal? {
        switch Handshake.accept(r, options: options) {
        case .success(let accepted):
            XCTFail("expected a \(status) refusal, got an accepted handshake: \(String(decoding: accepted.response, as: UTF8.self))",
                    file: file, line: line)
            return nil
        case .failure(let refusal):
            XCTAssertEqual(refusal.status.code, status, "expected status \(status), got \(refusal.status.code) (\(refusal.message))",
                           file: file, line: line)
            let encoded = String(decoding: refusal.response.encoded(), as: UTF8.self)
            XCTAssertTrue(encoded.hasPrefix("HTTP/1.1 \(status) "), "expected the refusal response to carry status \(status)",
                          file: file, line: line)
            XCTAssertTrue(encoded.contains("Connection: close\r\n"), "expected a refused upgrade to close the connection",
                          file: file, line: line)
            return refusal
        }
    }

    private func hasHeader(_ refusal: HandshakeRefusal?, _ name: String, _ value: String) -> Bool {
        refusal?.extraHeaders.contains { $0.0.lowercased() == name.lowercased() && $0.1 == value } ?? false
    }

    // MARK: accept value

    func testAcceptValueForRFC6455SampleKey() {
        XCTAssertEqual(Handshake.acceptValue(forKey: Self.sampleKey), Self.sampleAccept,
                       "expected the RFC 6455 §1.3 sample accept value")
    }

    func testAcceptValueForAnotherKey() {
        // RFC 6455 §4.1 / widely published example pair.
        XCTAssertEqual(Handshake.acceptValue(forKey: "x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=",
                       "expected base64(SHA-1(key + GUID)) for a second known key")
    }

    func testSHA1MatchesRFC3174Vectors() throws {
        func hex(_ s: String) throws -> String {
            try XCTUnwrap(Digest.sha1.hash(Array(s.utf8))).map { String(format: "%02x", $0) }.joined()
        }
        XCTAssertEqual(try hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(try hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        XCTAssertEqual(try hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }

    func testStandardBase64MatchesFoundation() {
        for count in 0...40 {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255) }
            var out: [UInt8] = Array("prefix".utf8)
            bytes.withUnsafeBytes { Base64.appendPadded($0, to: &out) }
            XCTAssertEqual(String(decoding: out, as: UTF8.self), "prefix" + Data(bytes).base64EncodedString(), "\(bytes)")
        }
    }

    /// The key check against Foundation's decoder (what the handshake used before): a key is
    /// good exactly when it decodes to 16 bytes and is 24 characters long (Foundation also
    /// takes a third `=`, which is not base64: refused now).
    func testKeyCheckAgreesWithFoundationsDecoder() {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ .".utf8)
        var accepted = 0
        for round in 0..<20_000 {
            var key: [UInt8]
            if round % 2 == 0 { // near the shape of a key: 22 to 26 characters, mostly ending in ==
                key = Array(Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString().utf8)
                let i = Int.random(in: 0..<key.count)
                switch Int.random(in: 0..<4) {
                case 0: key[i] = alphabet.randomElement()!
                case 1: key.remove(at: i)
                case 2: key.insert(alphabet.randomElement()!, at: i)
                default: break
                }
            } else {
                key = (0..<Int.random(in: 0...30)).map { _ in alphabet.randomElement()! }
            }
            let text = String(decoding: key, as: UTF8.self)
            let expected = Data(base64Encoded: text)?.count == 16 && key.count == 24
            XCTAssertEqual(Handshake.isKey(text), expected, text)
            if expected { accepted += 1 }
        }
        XCTAssertGreaterThan(accepted, 1_000, "the generated keys reach the accepted shape")
        XCTAssertFalse(Handshake.isKey("iKicHksMag+ERTN0+BFOUw==="), "three = are not base64 padding")
        XCTAssertTrue(Handshake.isKey(Self.sampleKey))
    }

    // MARK: accepted upgrades

    func testValidUpgradeYields101WithAcceptValue() throws {
        let r = try upgrade()
        XCTAssertTrue(Handshake.isUpgradeRequest(r), "expected the request to be recognised as an upgrade")
        guard case .success(let accepted) = Handshake.accept(r, options: HandshakeOptions()) else {
            return XCTFail("expected a valid upgrade request to be accepted")
        }
        let text = String(decoding: accepted.response, as: UTF8.self)
        XCTAssertEqual(text, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       + "Sec-WebSocket-Accept: \(Self.sampleAccept)\r\n\r\n",
                       "expected exactly the 101 response with the sample accept value")
        XCTAssertNil(accepted.deflate, "expected no permessage-deflate when none was offered")
    }

    func testUpgradeTokensAreMatchedCaseInsensitivelyInLists() throws {
        let r = try upgrade(upgrade: "WebSocket", connection: "keep-alive, UPGRADE")
        guard case .success = Handshake.accept(r, options: HandshakeOptions()) else {
            return XCTFail("expected Upgrade/Connection tokens to match case-insensitively inside comma lists")
        }
    }

    func testOfferedDeflateIsNegotiatedInThe101() throws {
        let r = try upgrade(extensions: ["permessage-deflate; client_max_window_bits"])
        guard case .success(let accepted) = Handshake.accept(r, options: HandshakeOptions()) else {
            return XCTFail("expected the upgrade with a deflate offer to be accepted")
        }
        let text = String(decoding: accepted.response, as: UTF8.self)
        XCTAssertTrue(text.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"),
                      "expected the agreed extension in the 101, got \(text)")
        XCTAssertTrue(text.hasSuffix("\r\n\r\n"), "expected the 101 head to end with a blank line")
        XCTAssertNotNil(accepted.deflate, "expected deflate parameters when the offer was accepted")
    }

    func testDeflateDisabledByPolicyIsLeftOutOfThe101() throws {
        let r = try upgrade(extensions: ["permessage-deflate"])
        let options = HandshakeOptions(deflate: DeflatePolicy(enabled: false))
        guard case .success(let accepted) = Handshake.accept(r, options: options) else {
            return XCTFail("expected the upgrade to be accepted without deflate")
        }
        XCTAssertFalse(String(decoding: accepted.response, as: UTF8.self).contains("Sec-WebSocket-Extensions"),
                       "expected no extension header when the policy disables deflate")
        XCTAssertNil(accepted.deflate, "expected no deflate parameters when the policy disables deflate")
    }

    // MARK: refusals

    func testPostUpgradeIsRefusedWith405() throws {
        let refusal = assertRefused(try upgrade(method: "POST"), status: 405)
        XCTAssertTrue(hasHeader(refusal, "Allow", "GET"), "expected a 405 to say Allow: GET")
    }

    func testHTTP10UpgradeIsRefusedWith400() throws {
        _ = assertRefused(try upgrade(version: "HTTP/1.0"), status: 400)
    }

    func testMissingHostIsRefusedWith400() throws {
        _ = assertRefused(try upgrade(host: nil), status: 400)
    }

    func testMissingUpgradeHeaderIsRefusedWith426() throws {
        let refusal = assertRefused(try upgrade(upgrade: nil), status: 426)
        XCTAssertTrue(hasHeader(refusal, "Upgrade", "websocket"), "expected a 426 to name the websocket upgrade")
    }

    func testUpgradeToOtherProtocolIsRefusedWith426() throws {
        _ = assertRefused(try upgrade(upgrade: "h2c"), status: 426)
    }

    func testConnectionWithoutUpgradeTokenIsRefusedWith400() throws {
        _ = assertRefused(try upgrade(connection: "keep-alive"), status: 400)
        _ = assertRefused(try upgrade(connection: nil), status: 400)
    }

    func testVersion8IsRefusedWith426AndAdvertisesVersion13() throws {
        let refusal = assertRefused(try upgrade(wsVersion: "8"), status: 426)
        XCTAssertTrue(hasHeader(refusal, "Sec-WebSocket-Version", "13"),
                      "expected the 426 to carry Sec-WebSocket-Version: 13")
        let encoded = String(decoding: refusal?.response.encoded() ?? [], as: UTF8.self)
        XCTAssertTrue(encoded.contains("\r\nSec-WebSocket-Version: 13\r\n"),
                      "expected Sec-WebSocket-Version: 13 in the encoded 426 response, got \(encoded)")
    }

    func testMissingVersionIsRefusedWith426() throws {
        _ = assertRefused(try upgrade(wsVersion: nil), status: 426)
    }

    func testKeyThatIsNotBase64Of16BytesIsRefusedWith400() throws {
        _ = assertRefused(try upgrade(key: "not base64!!"), status: 400)
        // Valid base64, but 15 and 17 bytes.
        _ = assertRefused(try upgrade(key: "AAAAAAAAAAAAAAAAAAAA"), status: 400)
        _ = assertRefused(try upgrade(key: "AAAAAAAAAAAAAAAAAAAAAAA="), status: 400)
        _ = assertRefused(try upgrade(key: ""), status: 400)
        _ = assertRefused(try upgrade(key: nil), status: 400)
    }

    func testOriginNotInAllowListIsRefusedWith403() throws {
        let options = HandshakeOptions(allowedOrigins: ["https://app.example.com"])
        _ = assertRefused(try upgrade(origin: "https://evil.example.com"), status: 403, options: options)
        _ = assertRefused(try upgrade(origin: nil), status: 403, options: options)
    }

    func testAllowedOriginIsAccepted() throws {
        let options = HandshakeOptions(allowedOrigins: ["https://other.example", "https://app.example.com"])
        guard case .success(let accepted) = Handshake.accept(try upgrade(origin: "https://app.example.com"), options: options) else {
            return XCTFail("expected an origin from the allow-list to be accepted")
        }
        XCTAssertTrue(String(decoding: accepted.response, as: UTF8.self).hasPrefix("HTTP/1.1 101 "),
                      "expected a 101 for an allowed origin")
    }

    func testAnyOriginIsAcceptedWithEmptyAllowList() throws {
        guard case .success = Handshake.accept(try upgrade(origin: "https://anything.example"), options: HandshakeOptions()) else {
            return XCTFail("expected any origin to be accepted when the allow-list is empty")
        }
    }
}
