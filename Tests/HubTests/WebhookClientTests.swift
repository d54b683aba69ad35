import XCTest
import Protocol
@testable import Notifications

// The webhook client's pure parts: the URL rule, the request bytes, the status line.
final class WebhookClientTests: XCTestCase {
    func testTheURLIsPlainHTTPWithAHostAnOptionalPortAndATarget() {
        XCTAssertEqual(try WebhookEndpoint.parse("http://backend.internal/hooks").get(),
                       WebhookEndpoint(host: "backend.internal", port: 80, target: "/hooks"))
        XCTAssertEqual(try WebhookEndpoint.parse("http://127.0.0.1:8088").get(), WebhookEndpoint(host: "127.0.0.1", port: 8088, target: "/"))
        XCTAssertEqual(try WebhookEndpoint.parse("http://h:1?x=1#frag").get(), WebhookEndpoint(host: "h", port: 1, target: "/?x=1"))
        XCTAssertEqual(try WebhookEndpoint.parse("http://[::1]:9/a").get().hostHeader, "[::1]:9")
        XCTAssertEqual(try WebhookEndpoint.parse("http://h/a").get().hostHeader, "h")
        XCTAssertEqual(try WebhookEndpoint.parse("https://h/a").get(), WebhookEndpoint(tls: true, host: "h", port: 443, target: "/a"))
        XCTAssertEqual(try WebhookEndpoint.parse("https://h/a").get().hostHeader, "h")
        XCTAssertEqual(try WebhookEndpoint.parse("https://h:80/a").get().hostHeader, "h:80")
        XCTAssertEqual(WebhookEndpoint.parse("h:80/a"), .failure(.notHTTP))
        XCTAssertEqual(WebhookEndpoint.parse("http://u:p@h/a"), .failure(.userInfo))
        XCTAssertEqual(WebhookEndpoint.parse("http://h:0/a"), .failure(.badPort))
        XCTAssertEqual(WebhookEndpoint.parse("http://h:65536/a"), .failure(.badPort))
        XCTAssertEqual(WebhookEndpoint.parse("http:///a"), .failure(.badHost))
        XCTAssertEqual(WebhookEndpoint.parse("http://h/a b"), .failure(.badCharacters))
    }

    func testTheRequestCarriesTheSignatureTypeAgentLengthAndClose() {
        let e = WebhookEndpoint(host: "h", port: 8088, target: "/in?x=1")
        let bytes = WebhookHTTPClient.request(e, body: Array("{}".utf8), signature: "t=1,v1=ab")
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self),
                       "POST /in?x=1 HTTP/1.1\r\nHost: h:8088\r\nUser-Agent: montrose-hub/0.9 (webhooks)\r\n" +
                       "Content-Type: application/json\r\nContent-Length: 2\r\nMontrose-Signature: t=1,v1=ab\r\nConnection: close\r\n\r\n{}")
    }

    func testTheStatusLineIsReadWhenWholeAndAnythingElseIsNotHTTP() {
        XCTAssertNil(WebhookHTTPClient.status(in: Array("HTTP/1.1 20".utf8)))
        XCTAssertEqual(WebhookHTTPClient.status(in: Array("HTTP/1.1 204 No Content\r\n".utf8)), .success(204))
        XCTAssertEqual(WebhookHTTPClient.status(in: Array("HTTP/1.0 500\r\n".utf8)), .success(500))
        XCTAssertEqual(WebhookHTTPClient.status(in: Array("SSH-2.0-OpenSSH\r\n".utf8)), .failure(.badAnswer))
        XCTAssertEqual(WebhookHTTPClient.status(in: Array("HTTP/1.1 2000 x\r\n".utf8)), .failure(.badAnswer))
        XCTAssertEqual(WebhookHTTPClient.status(in: [UInt8](repeating: 65, count: WebhookHTTPClient.maxStatusBytes + 1)), .failure(.badAnswer))
    }

    func testASignatureVerifiesOnlyForItsBodyTimeAndSecretWithinTheTolerance() throws {
        let secret = Array("whsec-0123456789abcdef".utf8), body = Array(#"{"id":"evt_1"}"#.utf8)
        let header = try XCTUnwrap(WebhookSignature.header(secret: secret, timestamp: 1_000, body: body))
        XCTAssertTrue(header.hasPrefix("t=1000,v1=") && header.count == "t=1000,v1=".count + 64, header)
        XCTAssertEqual(WebhookSignature.verify(header: header, secret: secret, body: body, now: 1_300), .success(1_000))
        XCTAssertEqual(WebhookSignature.verify(header: header, secret: secret, body: body, now: 1_301),
                       .failure(.outsideTolerance(ageSeconds: 301)))
        XCTAssertEqual(WebhookSignature.verify(header: header, secret: secret, body: body + [32], now: 1_000), .failure(.mismatch))
        XCTAssertEqual(WebhookSignature.verify(header: header, secret: Array("other-secret-0123456".utf8), body: body, now: 1_000),
                       .failure(.mismatch))
        XCTAssertEqual(WebhookSignature.verify(header: header.replacingOccurrences(of: "t=1000", with: "t=1001"), secret: secret,
                                               body: body, now: 1_000), .failure(.mismatch))
        XCTAssertEqual(WebhookSignature.verify(header: "v1=ab", secret: secret, body: body, now: 1_000), .failure(.malformed))
        XCTAssertEqual(WebhookSignature.verify(header: "t=1000,v1=00,\(header.split(separator: ",")[1])", secret: secret, body: body,
                                               now: 1_000), .success(1_000), "one matching v1 among several (a rotation)")
        XCTAssertNil(WebhookSignature.header(secret: [], timestamp: 1, body: body))
    }
}
