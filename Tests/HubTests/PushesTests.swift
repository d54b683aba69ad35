import Persistence
import Protocol
import XCTest
@testable import Hub

// The exact bytes of every push built in Broker/Pushes.swift (docs/protocol.md "Pushes"):
// clients parse these, so a change to a field's name, order or encoding must show up here.
final class PushesTests: XCTestCase {
    private func text(_ p: Publication) -> String { String(decoding: p.payload, as: UTF8.self) }

    private let ann = SessionUser(id: "ann", role: .client, name: "Ann \"A\"", services: nil)
    private let key = ConversationKey(service: "website", clientId: "ann")

    func testPresencePushes() {
        XCTAssertEqual(text(.membership("join", "conv:website:ann", ann)),
                       #"{"type":"join","channel":"conv:website:ann","user":{"id":"ann","role":"client","name":"Ann \"A\""}}"#)
        XCTAssertEqual(text(.membership("leave", "conv:website:ann", ann)),
                       #"{"type":"leave","channel":"conv:website:ann","user":{"id":"ann","role":"client","name":"Ann \"A\""}}"#)
        XCTAssertEqual(text(.typing("conv:website:ann", ann)),
                       #"{"type":"typing","channel":"conv:website:ann","user":"ann","name":"Ann \"A\""}"#)
        XCTAssertEqual(text(.status("conv:website:ann", user: "wes", "busy")),
                       #"{"type":"status","channel":"conv:website:ann","user":"wes","status":"busy"}"#)
        XCTAssertEqual(text(.revoked("conv:website:ann")), #"{"type":"revoked","channel":"conv:website:ann"}"#)
    }

    func testConversationPushes() {
        XCTAssertEqual(text(.read("conv:website:ann", user: "wes", seq: 12)),
                       #"{"type":"read","channel":"conv:website:ann","user":"wes","seq":12}"#)
        XCTAssertEqual(text(.assignment(to: "ann", key, agent: "wes")),
                       #"{"type":"assignment","service":"website","client":"ann","agents":["wes"]}"#)
        XCTAssertEqual(Publication.assignment(to: "wes", key, agent: nil).channel, "user:wes")
        XCTAssertEqual(text(.assignment(to: "wes", key, agent: nil)),
                       #"{"type":"assignment","service":"website","client":"ann","agents":[]}"#)
    }

    func testNotificationPushes() {
        let n = NotificationRecord(id: 5, service: "wallet", category: "payments", title: "Top-up", body: "€20",
                                   data: #"{"amount":20}"#, ts: 1_700_000_000_000, read: false)
        let pushed = Publication.notificationPush(channel: "user:ann", type: "notification", n)
        XCTAssertEqual(pushed.notificationID, 5)
        XCTAssertEqual(text(pushed),
                       #"{"type":"notification","id":5,"service":"wallet","category":"payments","title":"Top-up","body":"€20","data":{"amount":20},"ts":1700000000000,"read":false}"#)
        var b = n
        b.audience = "all"
        XCTAssertEqual(text(.notificationPush(channel: "broadcast:all", type: "broadcast", b)),
                       #"{"type":"broadcast","id":5,"title":"Top-up","body":"€20","data":{"amount":20},"ts":1700000000000}"#)
        XCTAssertEqual(text(.unread("ann", UnreadCounts(byService: ["wallet": 2, "courses": 1, "website": 0]))),
                       #"{"type":"unread","total":3,"by_service":{"courses":1,"wallet":2}}"#)
    }
}
