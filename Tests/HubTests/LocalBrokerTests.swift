import Foundation
import Protocol
import Synchronization
import XCTest
@testable import Hub

// The single-node broker over real sockets: publications from one thread arrive in order,
// the node's interest in a channel is reported on its first and last subscriber (what a
// cluster broker subscribes and unsubscribes by), and a publication survives being taken
// apart into its transportable parts and framed again.
final class LocalBrokerTests: XCTestCase {
    var hub: TestHub!
    override func tearDown() { hub?.stop() }

    func testPublicationsFromOneThreadArriveInOrderOnEveryLoop() throws {
        hub = try TestHub(loops: 2)
        let channel = "conv:support:order"
        // The kernel spreads connections over the loops' listeners (SO_REUSEPORT): open until
        // there is one reader on each loop.
        var readers: [String: ChatClient] = [:]
        for i in 0..<32 where readers.count < 2 {
            let c = try ChatClient(port: hub.port, token: TestHub.token("order-admin-\(i)", .admin))
            let loop = String(c.session.split(separator: ".").first ?? "")
            if readers[loop] == nil { readers[loop] = c }
        }
        XCTAssertEqual(readers.count, 2, "expected a reader on each of the two loops")
        for r in readers.values { _ = try r.result("subscribe", ["channel": .string(channel)]) }
        let broker = hub.server.chat.broker
        for seq in Int64(1)...200 {
            broker.publish(.push(channel: channel, seq: seq) { w in
                w.key("type"); w.string("message"); w.key("channel"); w.string(channel); w.key("seq"); w.int(seq)
            })
        }
        for r in readers.values {
            for seq in Int64(1)...200 {
                XCTAssertEqual(try r.push("message")["seq"]?.intValue, seq)
            }
        }
    }

    func testTheNodeIsInterestedFromTheFirstSubscriberToTheLast() throws {
        hub = try TestHub(loops: 2)
        let changes = Mutex<[String]>([])
        let channel = "conv:website:interest"
        hub.server.chat.router.onNodeInterestChange { name, interested in
            guard name == channel else { return }
            changes.withLock { $0.append(interested ? "+" : "-") }
        }
        XCTAssertFalse(hub.server.chat.broker.hasInterest(channel))
        let a = try ChatClient(port: hub.port, token: TestHub.token("interest-a", .admin))
        let b = try ChatClient(port: hub.port, token: TestHub.token("interest-b", .admin))
        _ = try a.result("subscribe", ["channel": .string(channel)])
        _ = try b.result("subscribe", ["channel": .string(channel)])
        XCTAssertTrue(hub.server.chat.broker.hasInterest(channel))
        XCTAssertEqual(changes.withLock { $0 }, ["+"], "expected one report for the node's first subscriber")
        _ = try a.result("unsubscribe", ["channel": .string(channel)])
        XCTAssertEqual(changes.withLock { $0 }, ["+"], "expected no report while a subscriber is left")
        _ = try b.result("unsubscribe", ["channel": .string(channel)])
        XCTAssertEqual(changes.withLock { $0 }, ["+", "-"], "expected a report when the last one leaves")
        XCTAssertFalse(hub.server.chat.broker.hasInterest(channel))
    }

    func testAPublicationTakenApartAndFramedAgainIsTheSameFrame() {
        for size in [0, 100, 125, 126, 1_000, 65_535, 65_536, 70_000] {
            let text = String(repeating: "x", count: size)
            let original = Publication.push(channel: "user:u1", seq: 7, notificationID: 9) { w in
                w.key("type"); w.string("notification"); w.key("text"); w.string(text)
            }
            let copy = Publication(channel: original.channel, payload: original.payload,
                                   seq: original.seq, notificationID: original.notificationID)
            XCTAssertEqual(Array(copy.frame.buffer), Array(original.frame.buffer), "payload of \(size) characters")
            XCTAssertEqual(try JSONParser.parse(Array(original.payload))["text"]?.stringValue?.count, size)
        }
    }
}
