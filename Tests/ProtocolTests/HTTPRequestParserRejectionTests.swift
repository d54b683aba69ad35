import XCTest
@testable import Protocol

/// Requests the parser refuses, each with the status the hub answers, whole, byte by byte and in
/// random splits.
final class HTTPRequestParserRejectionTests: XCTestCase {

    // MARK: request line rejections

    func testMalformedRequestLineIsRejectedWith400() {
        assertRejects("GET /\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("\u{0}\r\n\r\n", status: 400)
    }

    func testBadMethodTokenIsRejectedWith400() {
        assertRejects("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("GÉT / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        assertRejects(" / HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
    }

    func testTargetNotStartingWithSlashIsRejectedWith400() {
        assertRejects("GET index.html HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("GET /a\u{7F}b HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
    }

    // MARK: request-target forms (RFC 9112 §3.2)

    /// RFC 9112 §3.2.2: a server must accept the absolute form. The request is routed by the
    /// target's path and query, as an origin-form request would be, and the target's authority
    /// replaces whatever Host the request carried.
    func testAbsoluteFormTargetIsServedByItsPathAndQueryWithItsAuthorityAsHost() {
        let bytes = [UInt8](ascii: "GET http://example.com:8081/index.html?x=1&y=two HTTP/1.1\r\n"
            + "Host: elsewhere.example\r\nUser-Agent: tests/1.0\r\nHost: third.example\r\n\r\n")
        let expected = HTTPRequest(method: "GET", target: "/index.html?x=1&y=two",
                                   headers: [("user-agent", "tests/1.0"), ("host", "example.com:8081")])
        assertParses(bytes, as: [expected], feedings: Feeding.all(randomCount: 20, seedBase: 7_000))
    }

    func testAbsoluteFormSchemeIsCaseInsensitiveAndAnEmptyPathIsTheRoot() throws {
        let cases: [(target: String, path: String, query: [String: String], host: String)] = [
            ("HTTPS://Example.COM", "/", [:], "Example.COM"),
            ("hTTp://h?q=caf%C3%A9", "/", ["q": "café"], "h"),
            ("http://h:/a/b/", "/a/b/", [:], "h:"),
            ("http://127.0.0.1:8080/healthz", "/healthz", [:], "127.0.0.1:8080"),
            ("http://[::1]:8080/v1/stats?limit=5", "/v1/stats", ["limit": "5"], "[::1]:8080"),
            ("http://my-host.example_1~x/%2e%2e/a", "/%2e%2e/a", [:], "my-host.example_1~x"),
        ]
        for c in cases {
            // HTTP/1.0 without a Host header: the authority provides it.
            let (requests, _) = try parseAll([UInt8](ascii: "GET \(c.target) HTTP/1.0\r\n\r\n"), feeding: .whole)
            let r = try XCTUnwrap(requests.first, "expected \(c.target) to be accepted")
            XCTAssertEqual(r.path, c.path, "expected the path of \(c.target)")
            XCTAssertEqual(r.query, c.query, "expected the query of \(c.target)")
            XCTAssertEqual(r.headers("host"), [c.host], "expected the authority of \(c.target) as the one Host")
        }
    }

    func testAbsoluteFormTargetsThatAreNotHTTPURIsAreRejectedWith400() {
        for target in [
            "ftp://example.com/", "ws://example.com/ws", "file:///etc/passwd", "mailto:a@b",
            "http:/healthz", "http:healthz", "http//h/x", "://h/x", "ht-tp://h/",
            "http:///healthz", "http://:8080/healthz", "http://?x=1", "http://#f",
            "http://user@example.com/", "http://user:pw@example.com/", "http://127.0.0.1@evil.example/",
            "http://h:8o/", "http://h:123456/", "http://[::1/", "http://[::1]x/", "http://[zz]/",
            "http://h#frag/", "http://h%2/", "http://h<b>/", "http://h{}/",
        ] {
            assertRejects("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n", status: 400, feedings: [.whole, .byteByByte])
        }
    }

    /// Authority-form (CONNECT host:port) and asterisk-form (OPTIONS *) are forms the hub does
    /// not serve: a clear 501, not a route lookup on a path that is not one.
    func testConnectAndOptionsAsteriskAreRefusedWith501() {
        assertRejects("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", status: 501)
        assertRejects("CONNECT [::1]:443 HTTP/1.1\r\nHost: h\r\n\r\n", status: 501)
        assertRejects("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", status: 501)
    }

    func testAsteriskTargetForOtherMethodsIsRejectedWith400() {
        assertRejects("GET * HTTP/1.1\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("POST * HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", status: 400)
    }

    func testHTTP2VersionIsRejectedWith505() {
        assertRejects("GET / HTTP/2.0\r\nHost: h\r\n\r\n", status: 505)
        assertRejects("GET / HTTP/0.9\r\nHost: h\r\n\r\n", status: 505)
    }

    func testGarbageVersionIsRejectedWith400() {
        assertRejects("GET / FOO\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("GET / http/1.1\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.10\r\nHost: h\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1\r\nHost: h\r\n\r\n", status: 400)
    }

    /// RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT. A version with non-digits is a
    /// syntax error (400), not an unsupported version (505).
    func testVersionWithNonDigitsIsRejectedWith400NotWith505() {
        assertRejects("GET / HTTP/x.y\r\nHost: h\r\n\r\n", status: 400, feedings: [.whole])
        assertRejects("GET / HTTP/abc\r\nHost: h\r\n\r\n", status: 400, feedings: [.whole])
    }

    func testRequestLineOverLimitIsRejectedWith414() {
        let target = "/" + String(repeating: "a", count: 100)
        assertRejects("GET \(target) HTTP/1.1\r\nHost: h\r\n\r\n", status: 414,
                      limits: HTTPLimits(maxRequestLine: 64))
    }

    func testRequestLineOverLimitFedByteByByteThrowsOnceTheLimitIsPassed() {
        let limit = 64
        var parser = HTTPRequestParser(limits: HTTPLimits(maxRequestLine: limit))
        // No CR or LF ever arrives: the parser must not wait for one.
        let line = [UInt8](ascii: "GET /" + String(repeating: "a", count: 500))
        for (i, byte) in line.enumerated() {
            parser.append([byte])
            do {
                _ = try parser.next()
                if i + 1 > limit + 1 {
                    XCTFail("expected 414 once \(limit + 1) bytes of request line had arrived, still waiting at \(i + 1) bytes")
                    return
                }
            } catch {
                // `next()` throws(HTTPError), so `error` is an HTTPError here.
                XCTAssertEqual(error.status.code, 414, "expected 414 for an over-long request line, got \(error)")
                XCTAssertGreaterThan(i + 1, limit, "expected no 414 while the request line is within the limit (threw at \(i + 1) bytes)")
                return
            }
        }
        XCTFail("expected 414 for a request line of \(line.count) bytes with a limit of \(limit)")
    }

    /// A request line of exactly `maxRequestLine` bytes is within the limit however the bytes
    /// arrive; the CR of its CRLF is not part of the line.
    func testRequestLineExactlyAtLimitIsAcceptedWhicheverWayItIsFed() {
        let limit = 64
        let prefix = "GET /", suffix = " HTTP/1.1"
        let target = String(repeating: "a", count: limit - prefix.count - suffix.count)
        let line = prefix + target + suffix
        XCTAssertEqual(line.utf8.count, limit, "fixture: the request line should be exactly at the limit")
        let bytes = [UInt8](ascii: line + "\r\nHost: h\r\n\r\n")
        for feeding in Feeding.all(randomCount: 20, seedBase: 6_000) {
            do {
                let (requests, _) = try parseAll(bytes, feeding: feeding, limits: HTTPLimits(maxRequestLine: limit))
                XCTAssertEqual(requests.count, 1, "expected the request to parse when fed \(feeding)")
            } catch {
                XCTFail("expected a request line of exactly \(limit) bytes to be accepted when fed \(feeding), got \(error)")
            }
        }
    }

    // MARK: header rejections

    func testObsoleteLineFoldingIsRejectedWith400() {
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n  continued\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n\tcontinued\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1\r\n Host: h\r\n\r\n", status: 400)
    }

    func testHeaderWithoutColonIsRejectedWith400() {
        assertRejects("GET / HTTP/1.1\r\nHost h\r\n\r\n", status: 400)
    }

    func testInvalidHeaderNameIsRejectedWith400() {
        assertRejects("GET / HTTP/1.1\r\nHost : h\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1\r\nBad[Name]: x\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1\r\n: novalue\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1\r\nHéader: x\r\n\r\n", status: 400)
    }

    func testControlCharacterInHeaderValueIsRejectedWith400() {
        assertRejects("GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1\r\nX: a\u{0}b\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1\r\nX: a\u{7F}b\r\n\r\n", status: 400)
        assertRejects("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", status: 400)
    }

    func testHeaderSectionOverLimitIsRejectedWith431() {
        let big = String(repeating: "v", count: 300)
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\nX-Big: \(big)\r\n\r\n", status: 431, limits: HTTPFixtures.smallLimits)
        // Many small headers adding up past the limit (but under the count limit).
        let many = (0..<4).map { "X-\($0): \(String(repeating: "w", count: 70))\r\n" }.joined()
        assertRejects("GET / HTTP/1.1\r\n\(many)\r\n", status: 431, limits: HTTPFixtures.smallLimits)
    }

    func testHeaderSectionOverLimitIsRejectedBeforeItEnds() throws {
        var parser = HTTPRequestParser(limits: HTTPFixtures.smallLimits)
        parser.append([UInt8](ascii: "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "v", count: 400)))
        XCTAssertThrowsError(try parser.next(), "expected 431 without waiting for the end of the head") { error in
            XCTAssertEqual((error as? HTTPError)?.status.code, 431, "expected 431, got \(error)")
        }
    }

    func testTooManyHeadersIsRejectedWith431() {
        let six = (0..<6).map { "X-\($0): v\r\n" }.joined()
        assertRejects("GET / HTTP/1.1\r\n\(six)\r\n", status: 431, limits: HTTPFixtures.smallLimits)
    }

    func testHeaderCountAtLimitIsAccepted() throws {
        let five = (0..<5).map { "X-\($0): v\r\n" }.joined()
        let (requests, _) = try parseAll([UInt8](ascii: "GET / HTTP/1.1\r\n\(five)\r\n"), feeding: .whole,
                                         limits: HTTPFixtures.smallLimits)
        XCTAssertEqual(requests.first?.headers.count, 5, "expected exactly maxHeaderCount headers to be accepted")
    }

    // MARK: body framing rejections

    func testContentLengthOverBodyLimitIsRejectedWith413BeforeTheBodyArrives() {
        // Only the head is sent: the refusal must not wait for the body.
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", status: 413, limits: HTTPFixtures.smallLimits)
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n", status: 413,
                      limits: HTTPFixtures.smallLimits)
    }

    func testContentLengthAtBodyLimitIsAccepted() throws {
        let body = String(repeating: "b", count: 100)
        let (requests, _) = try parseAll([UInt8](ascii: "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n\(body)"),
                                         feeding: .whole, limits: HTTPFixtures.smallLimits)
        XCTAssertEqual(requests.first?.body.count, 100, "expected a body of exactly maxBodyBytes to be accepted")
    }

    func testInvalidContentLengthIsRejectedWith400() {
        for value in ["abc", "-1", "+5", "1.0", "0x10", "", "1 2"] {
            assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \(value)\r\n\r\n", status: 400)
        }
    }

    func testConflictingContentLengthIsRejectedWith400() {
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello!", status: 400)
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: 400)
    }

    func testTransferEncodingWithContentLengthIsRejectedWith400() {
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                      status: 400)
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                      status: 400)
    }

    func testTransferEncodingGzipIsRejectedWith501() {
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", status: 501)
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501)
    }

    func testChunkedBodyInHTTP10IsRejectedWith400() {
        assertRejects("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400)
    }

    func testChunkSizeOverBodyLimitIsRejectedWith413() {
        // 0x65 = 101 > maxBodyBytes 100; refused on the size line, before the chunk's data.
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", status: 413,
                      limits: HTTPFixtures.smallLimits)
        // Several chunks adding up past the limit.
        let chunk = String(repeating: "c", count: 0x40)
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n\(chunk)\r\n40\r\n\(chunk)\r\n0\r\n\r\n",
                      status: 413, limits: HTTPFixtures.smallLimits)
    }

    func testBadChunkSizeIsRejectedWith400() {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        assertRejects(head + "xyz\r\n", status: 400)
        assertRejects(head + "\r\n", status: 400)
        assertRejects(head + "-5\r\nhello\r\n0\r\n\r\n", status: 400)
        assertRejects(head + ";ext\r\n", status: 400)
    }

    func testChunkDataNotFollowedByCRLFIsRejectedWith400() {
        let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        assertRejects(head + "3\r\nabcXY\r\n0\r\n\r\n", status: 400)
    }

    func testEveryErrorMapsToItsStatus() {
        XCTAssertEqual(HTTPError.badRequest("x").status, .badRequest, "expected badRequest -> 400")
        XCTAssertEqual(HTTPError.requestLineTooLong(limit: 1).status.code, 414, "expected requestLineTooLong -> 414")
        XCTAssertEqual(HTTPError.headersTooLarge(limit: 1).status.code, 431, "expected headersTooLarge -> 431")
        XCTAssertEqual(HTTPError.tooManyHeaders(limit: 1).status.code, 431, "expected tooManyHeaders -> 431")
        XCTAssertEqual(HTTPError.bodyTooLarge(limit: 1).status.code, 413, "expected bodyTooLarge -> 413")
        XCTAssertEqual(HTTPError.unsupportedVersion.status.code, 505, "expected unsupportedVersion -> 505")
        XCTAssertEqual(HTTPError.notImplemented("x").status.code, 501, "expected notImplemented -> 501")
    }
}
