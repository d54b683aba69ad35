import Dispatch
import Protocol
import XCTest
@testable import Hub

// The publications of one mailbox drain are delivered together, each subscriber taking a run
// of one channel's at once. What a subscriber sees must not change: every channel's
// publications in order, and publications of different channels in the order they came.
final class RouterDrainTests: XCTestCase {
    private var hub: TestHub!
    private let channel = "conv:website:ann"
    override func tearDown() { hub?.stop() }

    /// A one-loop hub and two of ann's connections subscribed to her conversation.
    private func twoSubscribers() throws -> (ChatClient, ChatClient) {
        hub = try TestHub(loops: 1)
        let a = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        let b = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
        for c in [a, b] { _ = try c.result("subscribe", ["channel": .string(channel)]) }
        return (a, b)
    }

    /// Holds the loop in a mailbox job until the returned semaphore is signalled, so that
    /// everything published meanwhile waits for the same drain.
    private func holdLoop() -> DispatchSemaphore {
        let held = DispatchSemaphore(value: 0), holding = DispatchSemaphore(value: 0)
        hub.server.loops[0].execute { _ in holding.signal(); held.wait() }
        holding.wait()
        return held
    }

    func testOneDrainsPublicationsReachEachSubscriberInTheOrderPublished() throws {
        let (a, b) = try twoSubscribers()
        // One drain: a run of the conversation, one on `user:ann`, then a run of two.
        let held = holdLoop()
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
        let (a, stays) = try twoSubscribers()
        // A publication while the loop is held, then `a` leaves, then another publication.
        let held = holdLoop()
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
