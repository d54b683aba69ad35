import Foundation
import Glibc
import Protocol
import XCTest
@testable import Hub

// Hostile clients over real sockets: a slowloris crowd does not keep anyone else out.
final class AbuseTests: XCTestCase {
    func testAThousandSlowlorisConnectionsDoNotStopNewClientsFromChatting() throws {
        var limits = EngineLimits()
        limits.requestTimeoutMs = 3_000
        let hub = try TestHub(limits: limits)
        defer { hub.stop() }
        try hub.assign("wes", to: "ann", for: "website")
        // 1,000 connections that send a request one byte at a time, a byte a second.
        let request = Array("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n".utf8)
        var crowd: [TestSocket] = []
        for _ in 0..<1_000 { crowd.append(try TestSocket(port: hub.port)) }
        let started = Date()
        var sentBytes = 0
        var chats = 0
        var worstChatMs = 0.0
        while Date().timeIntervalSince(started) < 2.5 {
            for s in crowd { try? s.write([request[sentBytes % request.count]]) }
            sentBytes += 1
            // Meanwhile a client and an agent connect, authenticate and chat.
            let t0 = Date()
            let ann = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
            let wes = try ChatClient(port: hub.port, token: TestHub.token("wes", .websiteAgent))
            _ = try wes.result("subscribe", ["channel": "conv:website:ann"])
            _ = try ann.result("send", ["channel": "conv:website:ann", "text": "still served", "client_msg_id": .string("s\(chats)")])
            XCTAssertEqual(try wes.push("message")["text"]?.stringValue, "still served")
            worstChatMs = max(worstChatMs, Date().timeIntervalSince(t0) * 1000)
            chats += 1
            Thread.sleep(forTimeInterval: 0.5)
        }
        XCTAssertGreaterThanOrEqual(chats, 4)
        XCTAssertLessThan(worstChatMs, 1_000, "connect, auth, subscribe, send and delivery stayed fast")
        // The request deadline closes every one of them (408, then EOF).
        let deadline = Date().addingTimeInterval(5)
        var closed = 0
        for s in crowd {
            s.setTimeout(max(0.05, deadline.timeIntervalSinceNow))
            if s.waitForEOF() { closed += 1 }
        }
        XCTAssertEqual(closed, crowd.count, "every slowloris connection is closed by the request deadline")
        print("slowloris: \(crowd.count) connections, \(chats) chats meanwhile, worst \(Int(worstChatMs)) ms")
    }
}
