import Dispatch
import Protocol
import XCTest
@testable import Hub

// The publications of one mailbox drain are delivered together, each subscriber taking a run
// of one channel's at once. What a subscriber sees must not change: every channel's
// publications in order, and publications of different channels in the order they came.
final class RouterDrainTests: XCTestCase {
    private var hub: TestHub!
    override func tearDown() { hub?.stop() }

    func testOneDrainsPublicationsReachEachSubscriberInTheOrderPublished() throws {
        hub = try TestHub(loops: 1)
        let channel = "conv:website:ann"
        let a = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        let b = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        for c in [a, b] { _ = try c.result("subscribe", ["channel": .string(channel)]) }

        // The loop is held, so that everything published meanwhile waits for the same drain:
        // a run of the conversation, one on `user:ann`, then a run of two.
        let held = DispatchSemaphore(value: 0), holding = DispatchSemaphore(value: 0)
        hub.server.loops[0].execute { _ in holding.signal(); held.wait() }
        holding.wait()
        let broker = hub.server.chat.broker
        broker.publish(.read(channel, user: "zed", seq: 1))
        broker.publish(.assignment(to: "ann", ConversationKey(service: "website", clientId: "ann"), agent: "bob"))
        broker.publish(.read(channel, user: "zed", seq: 2))
        broker.publish(.read(channel, user: "zed", seq: 3))
        held.signal()

        for (name, c) in [("a", a), ("b", b)] {
            var seen: [String] = []
            while seen.count < 4 {
                let v = try c.next()
                switch v["type"]?.stringValue {
                case "read": seen.append("read \(v["seq"]?.intValue ?? -1)")
                case "assignment": seen.append("assignment")
                default: continue
                }
            }
            XCTAssertEqual(seen, ["read 1", "assignment", "read 2", "read 3"], "connection \(name)")
        }
    }

    func testAConnectionThatLeavesGetsWhatCameBeforeAndNothingAfter() throws {
        hub = try TestHub(loops: 1)
        let channel = "conv:website:ann"
        let a = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        let stays = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        for c in [a, stays] { _ = try c.result("subscribe", ["channel": .string(channel)]) }

        // Held loop: a publication, then `a` leaves (its unsubscribe waits in its socket), then
        // another publication after the loop has read the unsubscribe.
        let held = DispatchSemaphore(value: 0), holding = DispatchSemaphore(value: 0)
        hub.server.loops[0].execute { _ in holding.signal(); held.wait() }
        holding.wait()
        hub.server.chat.broker.publish(.read(channel, user: "zed", seq: 1))
        held.signal()
        _ = try a.result("unsubscribe", ["channel": .string(channel)])
        hub.server.chat.broker.publish(.read(channel, user: "zed", seq: 2))
        XCTAssertEqual(try stays.push("read")["seq"]?.intValue, 1)
        XCTAssertEqual(try stays.push("read")["seq"]?.intValue, 2)
        XCTAssertEqual(try a.push("read")["seq"]?.intValue, 1, "published before it left")
        XCTAssertTrue(a.noPush("read", within: 0.5), "nothing published after it left")
    }
}
