import Foundation
import Protocol
import XCTest
@testable import Hub

// The router keeps each subscriber's place in its lists on the session's side (a subscription's
// slot, or the session's two broadcast slots). After most subscribers of a loop leave (the lists
// squeeze their holes out and every place moves) and a newcomer joins, each one left still gets
// every push exactly once, and leaving still works.
final class RouterPlacesTests: XCTestCase {
    private var hub: TestHub!
    override func tearDown() { hub?.stop() }

    func testPlacesSurviveTheSqueezeAfterMostSubscribersLeave() throws {
        var limits = ChatLimits()
        limits.maxConnectionsPerUser = 100
        hub = try TestHub(loops: 1, chatLimits: limits)
        let channel = "conv:website:ann"
        var clients: [ChatClient] = []
        for _ in 0..<40 {
            let c = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
            _ = try c.result("subscribe", ["channel": .string(channel)])
            clients.append(c)
        }
        // 35 of 40 leave: past 32 holes and half of each list (the conversation, `user:ann`,
        // and both broadcast channels), so every list is squeezed and the places move.
        for c in clients.prefix(35) {
            try c.ws.close()
            _ = try c.ws.readClose()
        }
        let newcomer = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        _ = try newcomer.result("subscribe", ["channel": .string(channel)])
        let left = Array(clients.dropFirst(35)) + [newcomer]

        let ada = try ChatClient(port: hub.port, token: TestHub.token("ada", .admin))
        _ = try ada.result("admin.broadcast", ["audience": "client", "title": "one"])
        _ = try ada.result("admin.broadcast", ["audience": "all", "title": "two"])
        for seq in Int64(1)...2 {
            _ = try left[0].result("send", ["channel": .string(channel), "text": .string("m\(seq)"), "client_msg_id": .string("m\(seq)")])
        }
        for (i, c) in left.enumerated() {
            XCTAssertEqual(try c.push("broadcast")["title"]?.stringValue, "one", "client \(i)")
            XCTAssertEqual(try c.push("broadcast")["title"]?.stringValue, "two", "client \(i): once each, in order")
            XCTAssertEqual(try c.push("message")["seq"]?.intValue, 1, "client \(i)")
            XCTAssertEqual(try c.push("message")["seq"]?.intValue, 2, "client \(i): once each, in order")
        }
        // Leaving finds the moved place: after an unsubscribe the conversation reaches only the
        // ones still subscribed.
        _ = try left[1].result("unsubscribe", ["channel": .string(channel)])
        _ = try left[0].result("send", ["channel": .string(channel), "text": "m3", "client_msg_id": "m3"])
        XCTAssertEqual(try left[2].push("message")["seq"]?.intValue, 3)
        _ = try left[0].result("send", ["channel": .string(channel), "text": "m4", "client_msg_id": "m4"])
        XCTAssertEqual(try left[2].push("message")["seq"]?.intValue, 4)
        XCTAssertEqual(try left[1].result("ping").isNull, false)
        XCTAssertFalse(left[1].pushes.contains { $0["type"]?.stringValue == "message" && ($0["seq"]?.intValue ?? 0) >= 3 },
                       "an unsubscribed connection got no message after it left")
    }
}
