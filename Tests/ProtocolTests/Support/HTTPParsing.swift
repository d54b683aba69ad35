import XCTest
@testable import Protocol

/// Requests the HTTP parser tests feed, and what each must parse to.
enum HTTPFixtures {

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
}

/// Feeding a byte stream to the HTTP parser and checking what comes out, for every test of it.
extension XCTestCase {

    /// Feeds `bytes` as `feeding` says, draining `next()` after every read.
    func parseAll(_ bytes: [UInt8], feeding: Feeding, limits: HTTPLimits = HTTPLimits())
        throws -> (requests: [HTTPRequest], parser: HTTPRequestParser) {
        var parser = HTTPRequestParser(limits: limits)
        var requests: [HTTPRequest] = []
        for chunk in feeding.chunks(bytes) {
            parser.append(chunk)
            while let request = try parser.next() { requests.append(request) }
        }
        return (requests, parser)
    }

    func assertParses(_ bytes: [UInt8], as expected: [HTTPRequest], feedings: [Feeding],
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
    func assertRejects(_ text: String, status: Int, limits: HTTPLimits = HTTPLimits(),
                               feedings: [Feeding] = Feeding.all(randomCount: 5),
                               file: StaticString = #filePath, line: UInt = #line) {
        assertRejects(Array(text.utf8), status: status, limits: limits, feedings: feedings, file: file, line: line)
    }

    func assertRejects(_ bytes: [UInt8], status: Int, limits: HTTPLimits = HTTPLimits(),
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

    /// The request parses the same whole, byte by byte and in 200 random splits (seeded from `seed`).
    func assertParsesEveryWay(_ bytes: [UInt8], as expected: [HTTPRequest], seed: UInt64,
                              file: StaticString = #filePath, line: UInt = #line) {
        assertParses(bytes, as: expected, feedings: [.whole, .byteByByte] + (0..<UInt64(200)).map { .random(seed: seed + $0) },
                     file: file, line: line)
    }
}
