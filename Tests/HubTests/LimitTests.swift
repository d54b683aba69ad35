import Foundation
import Protocol
import XCTest
@testable import Hub

// Per-connection and per-user limits of /ws over real sockets: the op rate (rate_limited, then
// 1008 for a client that keeps going), connections per user, and connections waiting to
// authenticate.
final class LimitTests: XCTestCase {
    var hub: TestHub!
    override func tearDown() { hub?.stop() }

    private func hub(_ change: (inout ChatLimits) -> Void) throws -> TestHub {
        var limits = ChatLimits()
        change(&limits)
        return try TestHub(chatLimits: limits)
    }

    func testOpsOverTheRateAreRefusedAndAClientThatKeepsGoingIsClosed1008() throws {
        hub = try hub { $0.opsPerSecond = 5; $0.opsBurst = 5; $0.maxRateLimitStrikes = 3 }
        let c = try ChatClient(port: hub.port, token: TestHub.token("ann", .client)) // auth took one token
        for _ in 0..<4 { XCTAssertNotNil(try c.result("ping")) }
        XCTAssertEqual(try c.errorCode("ping"), "rate_limited", "the burst is spent")
        Thread.sleep(forTimeInterval: 0.5) // refills about two tokens
        XCTAssertNotNil(try c.result("ping"), "a client that slows down is served again")
        // Now one that keeps going: refusals in a row past the strike limit close it.
        for i in 0..<10 { try c.ws.send(#"{"id":\#(100 + i),"op":"ping"}"#) }
        var refused = 0
        var close: ReceivedFrame?
        while close == nil {
            let m = try c.ws.readMessage()
            if m.opcode == .close { close = m } else if m.text.contains("rate_limited") { refused += 1 }
        }
        XCTAssertEqual(refused, 3, "three refusals, then the close")
        XCTAssertEqual(close?.closeCode, 1008)
        XCTAssertEqual(close?.closeReason, "rate limit exceeded")
        // Other connections are untouched.
        XCTAssertNotNil(try ChatClient(port: hub.port, token: TestHub.token("bob", .client)).result("ping"))
    }

    func testAUserMayHoldOnlySoManyConnections() throws {
        hub = try hub { $0.maxConnectionsPerUser = 2 }
        let tabs = try (0..<2).map { _ in try ChatClient(port: hub.port, token: TestHub.token("ann", .client)) }
        let third = try ChatClient(port: hub.port)
        let r = try third.request("auth", ["token": .string(TestHub.token("ann", .client))])
        XCTAssertEqual(r["error"]?["code"]?.stringValue, "rate_limited", r.text)
        XCTAssertEqual(try third.ws.readClose().closeCode, 1008)
        XCTAssertNotNil(try tabs[0].result("ping"), "the first two stay")
        try tabs[1].ws.close()
        _ = try? tabs[1].ws.readClose()
        let deadline = Date().addingTimeInterval(2)
        var again: ChatClient?
        while again == nil && Date() < deadline {
            again = try? ChatClient(port: hub.port, token: TestHub.token("ann", .client))
            if again == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        XCTAssertNotNil(again, "a closed tab frees its place")
    }

    func testConnectionsWaitingToAuthenticateAreBounded() throws {
        hub = try hub { $0.maxUnauthenticated = 2 }
        let waiting = try (0..<2).map { _ in try ChatClient(port: hub.port) }
        XCTAssertEqual(waiting.count, 2)
        Thread.sleep(forTimeInterval: 0.1)
        let s = try TestSocket(port: hub.port)
        try s.write("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let r = try s.readHTTPResponse()
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.headers["retry-after"], "1")
        // Once one authenticates, there is room again.
        _ = try waiting[0].result("auth", ["token": .string(TestHub.token("ann", .client))])
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertNotNil(try ChatClient(port: hub.port, token: TestHub.token("bob", .client)).result("ping"))
    }
}
