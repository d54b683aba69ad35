import Foundation
import XCTest
@testable import Hub

// HTTP/1.1 on the listeners over real sockets: routes, keep-alive, pipelining, and every
// rejection answered with its status and a JSON error body.
final class HTTPServingTests: XCTestCase {
    var hub: TestHub!
    override func setUpWithError() throws {
        var limits = EngineLimits()
        limits.requestTimeoutMs = 1_000
        hub = try TestHub(limits: limits)
    }
    override func tearDown() { hub.stop() }

    private func request(_ raw: String, port: Int? = nil) throws -> (status: Int, headers: [String: String], body: String) {
        let s = try TestSocket(port: port ?? hub.port)
        try s.write(raw)
        let r = try s.readHTTPResponse()
        return (r.status, r.headers, String(decoding: r.body, as: UTF8.self))
    }

    func testHealthOnBothListeners() throws {
        let pub = try request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(pub.status, 200)
        XCTAssertTrue(pub.body.contains("\"status\":\"ok\""), pub.body)
        let bridge = try request("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", port: hub.bridgePort)
        XCTAssertEqual(bridge.status, 200)
        let metrics = try request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", port: hub.bridgePort)
        XCTAssertTrue(metrics.body.contains("montrose_connections "), "Prometheus text: \(metrics.body)")
    }

    func testConsoleIsServedAsHTML() throws {
        let r = try request("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.headers["content-type"], "text/html; charset=utf-8")
    }

    func testUnknownPathIs404WithJSONError() throws {
        let r = try request("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 404)
        XCTAssertEqual(r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such path\"}}")
    }

    func testWrongMethodIs405WithAllow() throws {
        let r = try request("DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 405)
        XCTAssertEqual(r.headers["allow"], "GET, HEAD")
    }

    func testOversizedHeadersAre431AndTooManyHeadersToo() throws {
        let big = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n"
        XCTAssertEqual(try request(big).status, 431)
        var many = "GET / HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<150 { many += "X-\(i): 1\r\n" }
        XCTAssertEqual(try request(many + "\r\n").status, 431)
    }

    func testLongRequestLineIs414() throws {
        let r = try request("GET /\(String(repeating: "a", count: 9_000)) HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 414)
    }

    func testMalformedRequestIs400AndTheConnectionCloses() throws {
        let s = try TestSocket(port: hub.port)
        try s.write("GARBAGE\r\n\r\n")
        XCTAssertEqual(try s.readHTTPResponse().status, 400)
        XCTAssertTrue(s.waitForEOF(), "a malformed request ends the connection")
    }

    func testBodyOverTheLimitIs413BeforeItIsSent() throws {
        let r = try request("POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", port: hub.bridgePort)
        XCTAssertEqual(r.status, 413)
        XCTAssertTrue(r.body.contains("too_large"), r.body)
    }

    func testKeepAliveServesSeveralRequestsAndPipelinedOnesInOrder() throws {
        let s = try TestSocket(port: hub.port)
        try s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try s.readHTTPResponse().status, 200)
        try s.write("GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try s.readHTTPResponse().status, 404, "pipelined responses come in request order")
        XCTAssertEqual(try s.readHTTPResponse().status, 200)
    }

    func testPlainGetOnTheWebSocketPathIsRefused() throws {
        hub.stop()
        hub = try TestHub()
        let r = try request("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(r.status, 426, "a non-upgrade request to a WebSocket route is told to upgrade")
        let v = try request("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
        XCTAssertEqual(v.status, 426)
        XCTAssertEqual(v.headers["sec-websocket-version"], "13")
    }

    func testSlowRequestIsAnswered408AtTheDeadline() throws {
        let s = try TestSocket(port: hub.port)
        try s.write("GET /healthz HTTP/1.1\r\nHo")
        let start = Date()
        let r = try s.readHTTPResponse()
        XCTAssertEqual(r.status, 408, "a request that does not finish within the deadline is refused")
        XCTAssertLessThan(Date().timeIntervalSince(start), 4, "within about the 1 s deadline plus one sweep")
        XCTAssertTrue(s.waitForEOF())
    }

    func testIdleSocketWithoutRequestIsClosedAtTheDeadline() throws {
        let s = try TestSocket(port: hub.port)
        let r = try s.readHTTPResponse()
        XCTAssertEqual(r.status, 408)
    }
}
