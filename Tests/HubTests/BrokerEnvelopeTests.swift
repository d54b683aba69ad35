import XCTest
@testable import Hub

// What a node refuses to read from Redis, and how it tells its own envelopes from others'.
final class BrokerEnvelopeTests: XCTestCase {
    private func header(_ e: BrokerEnvelope, own: String = "node-a") -> BrokerEnvelope.Header? {
        BrokerEnvelope.header(of: e.encoded(), ownID: Array(own.utf8))
    }

    func testAMembershipPushCarriesItsMember() {
        let e = BrokerEnvelope(kind: .push, origin: "node-a", seq: 3, notificationID: nil, member: "ann@x.io",
                               body: Array(#"{"type":"join"}"#.utf8))
        XCTAssertEqual(BrokerEnvelope(decoding: e.encoded()), e)
        XCTAssertEqual(header(e)?.member, "ann@x.io")
        let plain = BrokerEnvelope(kind: .push, origin: "node-a", seq: 4, notificationID: nil, body: [])
        XCTAssertNil(header(plain)?.member ?? nil)
    }

    func testAStaffOnlyPushSaysSoAcrossNodes() {
        let note = BrokerEnvelope(kind: .push, origin: "node-a", seq: 2, notificationID: nil, staffOnly: true, body: Array("{}".utf8))
        XCTAssertEqual(BrokerEnvelope(decoding: note.encoded()), note)
        XCTAssertEqual(header(note)?.staffOnly, true)
        XCTAssertEqual(header(BrokerEnvelope(kind: .push, origin: "node-a", seq: 3, notificationID: nil, body: []))?.staffOnly, false)
    }

    func testTheOwnCheckComparesTheWholeNodeID() {
        let e = BrokerEnvelope(kind: .push, origin: "node-a", seq: 1, notificationID: nil, body: [])
        XCTAssertEqual(header(e, own: "node-a")?.own, true)
        XCTAssertEqual(header(e, own: "node-b")?.own, false)
        XCTAssertEqual(header(e, own: "node-ab")?.own, false)
        XCTAssertEqual(header(e, own: "node-")?.own, false)
    }

    func testHostileHeadersAreNotRead() {
        XCTAssertNil(BrokerEnvelope.header(of: [1, 1, 16, 0], ownID: []), "an unknown flag bit (8 is staff only)")
        XCTAssertNil(BrokerEnvelope.header(of: [1, 1, 0x80, 0], ownID: []), "an unknown flag bit")
        for seq in [Int64(0), -1, Int64.min] {
            let e = BrokerEnvelope(kind: .push, origin: "n", seq: seq, notificationID: nil, body: [])
            XCTAssertNil(header(e), "seq \(seq)")
        }
        let badMember = BrokerEnvelope(kind: .push, origin: "n", seq: 1, notificationID: nil, member: "a b", body: [])
        XCTAssertNil(header(badMember), "a member that is not a user id")
        XCTAssertNil(BrokerEnvelope.header(of: [1, 1, 4, 0, 5, 65], ownID: []), "a cut member")
        XCTAssertNil(BrokerEnvelope.header(of: [1, 1, 4, 0], ownID: []), "a member flag with no length")
    }
}
