import XCTest
@testable import Protocol

final class HTTPRequestParserTests: XCTestCase {

    // MARK: fixtures

    static let getRequest = [UInt8](ascii:
        "GET /index.html?x=1&y=two HTTP/1.1\r\nHost: example.com\r\nUser-Agent: tests/1.0\r\nAccept: */*\r\n\r\n")
    static let expectedGet = HTTPRequest(
        method: "GET", target: "/index.html?x=1&y=two", versionMinor: 1,
        headers: [("host", "example.com"), ("user-agent", "tests/1.0"), ("accept", "*/*")])

    static let postRequest = [UInt8](ascii:
        "POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world")
    static let expectedPost = HTTPRequest(
        method: "POST", target: "/submit", versionMinor: 1,
        headers: [("host", "example.com"), ("content-type", "text/plain"), ("content-length", "11")],
        body: Array("hello world".utf8))

    static let chunkedRequest = [UInt8](ascii:
        "POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5\r\nhello\r\n6;name=value\r\n world\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: dropped\r\n\r\n")
    static let expectedChunked = HTTPRequest(
        method: "POST", target: "/upload", versionMinor: 1,
        headers: [("host", "example.com"), ("transfer-encoding", "chunked")],
        body: Array("hello world, chunked!".utf8))

    static let smallLimits = HTTPLimits(maxRequestLine: 64, maxHeaderBytes: 256, maxHeaderCount: 5, maxBodyBytes: 100)

    // MARK: helpers

    /// Feeds `bytes` as `feeding` says, draining `next()` after every read.
    private func parseAll(_ bytes: [UInt8], feeding: Feeding, limits: HTTPLimits = HTTPLimits())
        throws -> (requests: [HTTPRequest], parser: HTTPRequestParser) {
        var parser = HTTPRequestParser(limits: limits)
        var requests: [HTTPRequest] = []
        for chunk in feeding.chunks(bytes) {
            parser.append(chunk)
            while let request = try parser.next() { requests.append(request) }
        }
        return (requests, parser)
    }

    private func assertParses(_ bytes: [UInt8], as expected: [HTTPRequest], feedings: [Feeding],
                              file: StaticString = #filePath, line: UInt = #line) {
        for feeding in feedings {
            do {
                let (requests, parser) = try parseAll(bytes, feeding: feeding)
                XCTAssertEqual(requests, expected, "expected the requests to parse identically when fed \(feeding)",
                               file: file, line: line)
                XCTAssertTrue(parser.isIdle, "expected the parser to be idle after the last request (\(feeding))",
                              file: file, line: line)
            } catch {
                XCTFail("expected no error when fed \(feeding), got \(error)", file: file, line: line)
            }
        }
    }

    /// Asserts that the stream is refused with `status` whole, byte by byte and in random splits.
    private func assertRejects(_ text: String, status: Int, limits: HTTPLimits = HTTPLimits(),
                               feedings: [Feeding] = Feeding.all(randomCount: 5),
                               file: StaticString = #filePath, line: UInt = #line) {
        assertRejects(Array(text.utf8), status: status, limits: limits, feedings: feedings, file: file, line: line)
    }

    private func assertRejects(_ bytes: [UInt8], status: Int, limits: HTTPLimits = HTTPLimits(),
                               feedings: [Feeding] = Feeding.all(randomCount: 5),
                               file: StaticString = #filePath, line: UInt = #line) {
        for feeding in feedings {
            do {
                let (requests, _) = try parseAll(bytes, feeding: feeding, limits: limits)
                XCTFail("expected HTTP \(status) when fed \(feeding), but parsed \(requests.count) request(s) without error",
                        file: file, line: line)
            } catch let error as HTTPError {
                XCTAssertEqual(error.status.code, status,
                               "expected status \(status) when fed \(feeding), got \(error.status.code) (\(error))",
                               file: file, line: line)
            } catch {
                XCTFail("expected an HTTPError, got \(error)", file: file, line: line)
            }
        }
    }

    // MARK: well-formed requests

    func testGetRequestParsesWhole() {
        assertParses(Self.getRequest, as: [Self.expectedGet], feedings: [.whole])
    }

    func testGetRequestParsesByteByByte() {
        assertParses(Self.getRequest, as: [Self.expectedGet], feedings: [.byteByByte])
    }

    func testGetRequestParsesInRandomSplits() {
        assertParses(Self.getRequest, as: [Self.expectedGet],
                     feedings: (0..<200).map { .random(seed: 1_000 + $0) })
    }

    func testQueryDecodesPercentAndPlusKeepsFirstValueAndSkipsBrokenPairs() {
        func query(_ target: String) -> [String: String] { HTTPRequest(method: "GET", target: target).query }
        XCTAssertEqual(query("/ws?token=a.b-c_d%2Ee&x=1+2"), ["token": "a.b-c_d.e", "x": "1 2"])
        XCTAssertEqual(query("/ws?a=1&a=2&&b&=orphan"), ["a": "1", "b": ""], "first value wins; a pair without a key is skipped")
        XCTAssertEqual(query("/ws?bad%zz=1&v=%e2%82%ac&w=%ff"), ["v": "€", "w": ""], "broken escapes: key skipped, value empty")
        XCTAssertEqual(query("/ws?k=a=b"), ["k": "a=b"], "only the first = separates")
        XCTAssertEqual(query("/ws"), [:])
    }

    func testGetRequestExposesPathQueryAndHeaders() throws {
        let (requests, _) = try parseAll(Self.getRequest, feeding: .whole)
        let r = try XCTUnwrap(requests.first, "expected one request")
        XCTAssertEqual(r.path, "/index.html", "expected the path without the query")
        XCTAssertEqual(r.query, ["x": "1", "y": "two"], "expected the decoded query parameters")
        XCTAssertEqual(r.header("HOST"), "example.com", "expected header lookup to ignore case")
        XCTAssertTrue(r.keepAlive, "expected HTTP/1.1 to keep the connection alive by default")
    }

    func testPostWithContentLengthParsesWhole() {
        assertParses(Self.postRequest, as: [Self.expectedPost], feedings: [.whole])
    }

    func testPostWithContentLengthParsesByteByByte() {
        assertParses(Self.postRequest, as: [Self.expectedPost], feedings: [.byteByByte])
    }

    func testPostWithContentLengthParsesInRandomSplits() {
        assertParses(Self.postRequest, as: [Self.expectedPost],
                     feedings: (0..<200).map { .random(seed: 2_000 + $0) })
    }

    func testChunkedPostParsesWhole() {
        assertParses(Self.chunkedRequest, as: [Self.expectedChunked], feedings: [.whole])
    }

    func testChunkedPostParsesByteByByte() {
        assertParses(Self.chunkedRequest, as: [Self.expectedChunked], feedings: [.byteByByte])
    }

    func testChunkedPostParsesInRandomSplits() {
        assertParses(Self.chunkedRequest, as: [Self.expectedChunked],
                     feedings: (0..<200).map { .random(seed: 3_000 + $0) })
    }

    func testPipelinedRequestsAreReturnedInOrder() {
        let stream = Self.getRequest + Self.postRequest + Self.chunkedRequest + Self.getRequest
        let expected = [Self.expectedGet, Self.expectedPost, Self.expectedChunked, Self.expectedGet]
        assertParses(stream, as: expected, feedings: Feeding.all(randomCount: 200, seedBase: 4_000))
    }

    func testLargePipelinedBodiesSurviveBufferCompaction() {
        // Bodies over the parser's 16 KiB compaction threshold, followed by more requests, so
        // consumed bytes are dropped from the front while a head, body or chunk is in progress.
        let big = sampleText(byteCount: 20_000, seed: 42)
        let post = [UInt8](ascii: "POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: \(big.count)\r\n\r\n") + big
        let chunked = [UInt8](ascii: "POST /chunks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
            + [UInt8](ascii: String(big.count - 7_000, radix: 16) + "\r\n") + big.prefix(big.count - 7_000)
            + [UInt8](ascii: "\r\n1b58\r\n") + big.suffix(7_000) + [UInt8](ascii: "\r\n0\r\n\r\n")
        let longHeader = String(repeating: "h", count: 3_000)
        let get = [UInt8](ascii: "GET /after HTTP/1.1\r\nHost: h\r\nX-Long: \(longHeader)\r\n\r\n")
        let expected = [
            HTTPRequest(method: "POST", target: "/big", headers: [("host", "h"), ("content-length", "\(big.count)")], body: big),
            HTTPRequest(method: "GET", target: "/after", headers: [("host", "h"), ("x-long", longHeader)]),
            HTTPRequest(method: "POST", target: "/chunks", headers: [("host", "h"), ("transfer-encoding", "chunked")], body: big),
            HTTPRequest(method: "GET", target: "/after", headers: [("host", "h"), ("x-long", longHeader)]),
            HTTPRequest(method: "POST", target: "/big", headers: [("host", "h"), ("content-length", "\(big.count)")], body: big),
        ]
        assertParses(post + get + chunked + get + post, as: expected,
                     feedings: [.whole] + (0..<30).map { .random(seed: 4_500 + $0) })
    }

    func testNextReturnsNilUntilTheHeadIsComplete() throws {
        var parser = HTTPRequestParser()
        parser.append(Array(Self.getRequest.dropLast(2)))
        XCTAssertNil(try parser.next(), "expected no request before the blank line ending the head")
        XCTAssertFalse(parser.isIdle, "expected a partial request to make the parser non-idle")
        parser.append(Array(Self.getRequest.suffix(2)))
        XCTAssertEqual(try parser.next(), Self.expectedGet, "expected the request once the head is complete")
        XCTAssertNil(try parser.next(), "expected nothing more after the only request")
    }

    func testLeftoverBytesAfterUpgradeRequestAreReturnedByTakeBuffered() throws {
        let head = [UInt8](ascii: "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        let frameBytes: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]
        var parser = HTTPRequestParser()
        parser.append(head + frameBytes)
        let request = try XCTUnwrap(try parser.next(), "expected the upgrade request")
        XCTAssertEqual(request.target, "/ws", "expected the upgrade request's target")
        XCTAssertEqual(parser.bufferedCount, frameBytes.count, "expected the frame bytes to stay buffered")
        XCTAssertEqual(parser.takeBuffered(), frameBytes, "expected takeBuffered to return the bytes after the request untouched")
        XCTAssertEqual(parser.bufferedCount, 0, "expected the parser to be empty after takeBuffered")
        XCTAssertEqual(parser.takeBuffered(), [], "expected a second takeBuffered to return nothing")
    }

    func testLeftoverBytesAfterBodyAreReturnedByTakeBuffered() throws {
        var parser = HTTPRequestParser()
        parser.append(Self.postRequest + [1, 2, 3])
        XCTAssertEqual(try parser.next(), Self.expectedPost, "expected the POST with its body")
        XCTAssertEqual(parser.takeBuffered(), [1, 2, 3], "expected only the bytes after the body")
    }

    func testLFOnlyLineEndingsAreAccepted() {
        let get = [UInt8](ascii: "GET /a HTTP/1.1\nHost: h\nX-Mixed: yes\r\n\n")
        let post = [UInt8](ascii: "POST /b HTTP/1.0\nHost: h\nContent-Length: 3\n\nabc")
        let chunked = [UInt8](ascii: "POST /c HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n")
        let expected = [
            HTTPRequest(method: "GET", target: "/a", headers: [("host", "h"), ("x-mixed", "yes")]),
            HTTPRequest(method: "POST", target: "/b", versionMinor: 0,
                        headers: [("host", "h"), ("content-length", "3")], body: Array("abc".utf8)),
            HTTPRequest(method: "POST", target: "/c", headers: [("host", "h"), ("transfer-encoding", "chunked")],
                        body: Array("abc".utf8)),
        ]
        assertParses(get + post + chunked, as: expected, feedings: Feeding.all(randomCount: 50, seedBase: 5_000))
    }

    func testEmptyLinesBeforeRequestLineAreIgnored() {
        assertParses([UInt8](ascii: "\r\n\r\n") + Self.getRequest, as: [Self.expectedGet],
                     feedings: Feeding.all(randomCount: 20, seedBase: 5_500))
    }

    func testHeaderValueWhitespaceIsTrimmed() throws {
        let (requests, _) = try parseAll([UInt8](ascii: "GET / HTTP/1.1\r\nHost: \t h \t\r\nX-Empty:\r\n\r\n"), feeding: .whole)
        XCTAssertEqual(requests.first?.header("host"), "h", "expected leading and trailing OWS removed from the value")
        XCTAssertEqual(requests.first?.header("x-empty"), "", "expected an empty header value to be allowed")
    }

    func testIdenticalRepeatedContentLengthIsAccepted() {
        let bytes = [UInt8](ascii: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc")
        let expected = HTTPRequest(method: "POST", target: "/",
                                   headers: [("host", "h"), ("content-length", "3, 3"), ("content-length", "3")],
                                   body: Array("abc".utf8))
        assertParses(bytes, as: [expected], feedings: [.whole, .byteByByte])
    }

    func testContentLengthZeroCompletesWithoutBody() {
        let bytes = [UInt8](ascii: "POST /z HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
        let expected = HTTPRequest(method: "POST", target: "/z", headers: [("host", "h"), ("content-length", "0")])
        assertParses(bytes, as: [expected], feedings: [.whole, .byteByByte])
    }

    func testExpectContinueSetsWantsContinueUntilTheBodyArrives() throws {
        var parser = HTTPRequestParser()
        parser.append([UInt8](ascii: "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"))
        XCTAssertFalse(parser.wantsContinue, "expected wantsContinue to stay false before next() reads the head")
        XCTAssertNil(try parser.next(), "expected no request while the body is missing")
        XCTAssertTrue(parser.wantsContinue, "expected Expect: 100-continue to set wantsContinue")
        parser.append([UInt8](ascii: "hello"))
        let request = try XCTUnwrap(try parser.next(), "expected the request once the body has arrived")
        XCTAssertEqual(request.body, Array("hello".utf8), "expected the body after the 100-continue")
        XCTAssertFalse(parser.wantsContinue, "expected wantsContinue to be cleared once the request completes")
    }

    func testExpectContinueWithChunkedBodySetsWantsContinue() throws {
        var parser = HTTPRequestParser()
        parser.append([UInt8](ascii: "POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n"))
        XCTAssertNil(try parser.next(), "expected no request while the chunked body is missing")
        XCTAssertTrue(parser.wantsContinue, "expected Expect: 100-continue (any case) to set wantsContinue for a chunked body")
        parser.append([UInt8](ascii: "0\r\n\r\n"))
        XCTAssertNotNil(try parser.next(), "expected the request after the last chunk")
        XCTAssertFalse(parser.wantsContinue, "expected wantsContinue cleared after the request")
    }

    func testExpectContinueWithoutBodyDoesNotSetWantsContinue() throws {
        var parser = HTTPRequestParser()
        parser.append([UInt8](ascii: "GET /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n"))
        XCTAssertNotNil(try parser.next(), "expected a body-less request to complete at once")
        XCTAssertFalse(parser.wantsContinue, "expected no 100-continue for a request without a body")
    }

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
        assertRejects("GET / HTTP/1.1\r\nHost: h\r\nX-Big: \(big)\r\n\r\n", status: 431, limits: Self.smallLimits)
        // Many small headers adding up past the limit (but under the count limit).
        let many = (0..<4).map { "X-\($0): \(String(repeating: "w", count: 70))\r\n" }.joined()
        assertRejects("GET / HTTP/1.1\r\n\(many)\r\n", status: 431, limits: Self.smallLimits)
    }

    func testHeaderSectionOverLimitIsRejectedBeforeItEnds() throws {
        var parser = HTTPRequestParser(limits: Self.smallLimits)
        parser.append([UInt8](ascii: "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "v", count: 400)))
        XCTAssertThrowsError(try parser.next(), "expected 431 without waiting for the end of the head") { error in
            XCTAssertEqual((error as? HTTPError)?.status.code, 431, "expected 431, got \(error)")
        }
    }

    func testTooManyHeadersIsRejectedWith431() {
        let six = (0..<6).map { "X-\($0): v\r\n" }.joined()
        assertRejects("GET / HTTP/1.1\r\n\(six)\r\n", status: 431, limits: Self.smallLimits)
    }

    func testHeaderCountAtLimitIsAccepted() throws {
        let five = (0..<5).map { "X-\($0): v\r\n" }.joined()
        let (requests, _) = try parseAll([UInt8](ascii: "GET / HTTP/1.1\r\n\(five)\r\n"), feeding: .whole,
                                         limits: Self.smallLimits)
        XCTAssertEqual(requests.first?.headers.count, 5, "expected exactly maxHeaderCount headers to be accepted")
    }

    // MARK: body framing rejections

    func testContentLengthOverBodyLimitIsRejectedWith413BeforeTheBodyArrives() {
        // Only the head is sent: the refusal must not wait for the body.
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", status: 413, limits: Self.smallLimits)
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n", status: 413,
                      limits: Self.smallLimits)
    }

    func testContentLengthAtBodyLimitIsAccepted() throws {
        let body = String(repeating: "b", count: 100)
        let (requests, _) = try parseAll([UInt8](ascii: "POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n\(body)"),
                                         feeding: .whole, limits: Self.smallLimits)
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
                      limits: Self.smallLimits)
        // Several chunks adding up past the limit.
        let chunk = String(repeating: "c", count: 0x40)
        assertRejects("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n\(chunk)\r\n40\r\n\(chunk)\r\n0\r\n\r\n",
                      status: 413, limits: Self.smallLimits)
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
