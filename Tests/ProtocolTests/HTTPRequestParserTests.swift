import XCTest
@testable import Protocol

/// Well-formed requests: parsed the same however the bytes arrive. Fixtures and helpers are in
/// Support/HTTPParsing.swift; refusals in HTTPRequestParserRejectionTests.
final class HTTPRequestParserTests: XCTestCase {

    // MARK: well-formed requests

    func testGetRequestParsesWholeByteByByteAndInRandomSplits() {
        assertParsesEveryWay(HTTPFixtures.getRequest, as: [HTTPFixtures.expectedGet], seed: 1000)
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
        let (requests, _) = try parseAll(HTTPFixtures.getRequest, feeding: .whole)
        let r = try XCTUnwrap(requests.first, "expected one request")
        XCTAssertEqual(r.path, "/index.html", "expected the path without the query")
        XCTAssertEqual(r.query, ["x": "1", "y": "two"], "expected the decoded query parameters")
        XCTAssertEqual(r.header("HOST"), "example.com", "expected header lookup to ignore case")
        XCTAssertTrue(r.keepAlive, "expected HTTP/1.1 to keep the connection alive by default")
    }

    func testPostWithContentLengthParsesWholeByteByByteAndInRandomSplits() {
        assertParsesEveryWay(HTTPFixtures.postRequest, as: [HTTPFixtures.expectedPost], seed: 2000)
    }

    func testChunkedPostParsesWholeByteByByteAndInRandomSplits() {
        assertParsesEveryWay(HTTPFixtures.chunkedRequest, as: [HTTPFixtures.expectedChunked], seed: 3000)
    }

    func testPipelinedRequestsAreReturnedInOrder() {
        let stream = HTTPFixtures.getRequest + HTTPFixtures.postRequest + HTTPFixtures.chunkedRequest + HTTPFixtures.getRequest
        let expected = [HTTPFixtures.expectedGet, HTTPFixtures.expectedPost, HTTPFixtures.expectedChunked, HTTPFixtures.expectedGet]
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
        parser.append(Array(HTTPFixtures.getRequest.dropLast(2)))
        XCTAssertNil(try parser.next(), "expected no request before the blank line ending the head")
        XCTAssertFalse(parser.isIdle, "expected a partial request to make the parser non-idle")
        parser.append(Array(HTTPFixtures.getRequest.suffix(2)))
        XCTAssertEqual(try parser.next(), HTTPFixtures.expectedGet, "expected the request once the head is complete")
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
        parser.append(HTTPFixtures.postRequest + [1, 2, 3])
        XCTAssertEqual(try parser.next(), HTTPFixtures.expectedPost, "expected the POST with its body")
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
        assertParses([UInt8](ascii: "\r\n\r\n") + HTTPFixtures.getRequest, as: [HTTPFixtures.expectedGet],
                     feedings: Feeding.all(randomCount: 20, seedBase: 5_500))
    }

    func testHeaderValueWhitespaceIsTrimmed() throws {
        let (requests, _) = try parseAll([UInt8](ascii: "GET / HTTP/1.1\r\nHost: \t h \t\r\nX-Empty:\r\n\r\n"), feeding: .whole)
        XCTAssertEqual(requests.first?.header("host"), "h", "expected leading and trailing OWS removed from the value")
        XCTAssertEqual(requests.first?.header("x-empty"), "", "expected an empty header value to be allowed")
    }

    func testHeaderNamesAreLowercasedWhetherOrNotTheyAreWellKnown() throws {
        // Long names requests often carry are shared strings; every other name is written out.
        // Either way a name reads lowercased, and a near miss is not taken for a known one.
        let head = "GET / HTTP/1.1\r\nSEC-WebSocket-Version: 13\r\nsec-websocket-key: k\r\n"
            + "Sec-WebSocket-Kez: z\r\nX-Forwarded-Proto: https\r\nX-Long-Custom-Header-Name: v\r\nHost: h\r\n\r\n"
        let (requests, _) = try parseAll([UInt8](ascii: head), feeding: .whole)
        let r = try XCTUnwrap(requests.first)
        XCTAssertEqual(r.headers.map(\.name), ["sec-websocket-version", "sec-websocket-key", "sec-websocket-kez",
                                               "x-forwarded-proto", "x-long-custom-header-name", "host"])
        XCTAssertEqual(r.headers.map(\.value), ["13", "k", "z", "https", "v", "h"])
        XCTAssertEqual(r.header("Sec-WebSocket-Key"), "k")
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
}
