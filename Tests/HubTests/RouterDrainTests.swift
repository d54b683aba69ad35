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
        let all = try subscribers(2)
        return (all[0], all[1])
    }

    /// A one-loop hub and `n` of ann's connections subscribed to her conversation, in order.
    private func subscribers(_ n: Int, limits: EngineLimits = EngineLimits()) throws -> [ChatClient] {
        hub = try TestHub(loops: 1, limits: limits)
        return try (0..<n).map { _ in
            let c = try ChatClient(port: hub.port, token: TestHub.token("ann", .client))
            _ = try c.result("subscribe", ["channel": .string(channel)])
            return c
        }
    }

    /// No time for a turn's work: a delivery reaches one subscriber a turn and goes on in the next.
    private var noBudget: EngineLimits {
        var limits = EngineLimits()
        limits.flushBudgetMicros = 0
        return limits
    }

    private var resumed: Int { hub.server.loops[0].shared.fanOutsResumed.load(ordering: .relaxed) }

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

    func testAFanOutSpreadOverTurnsReachesEverySubscriberInOrder() throws {
        let all = try subscribers(5, limits: noBudget)
        let before = resumed
        let held = holdLoop()
        for seq in 1...3 { hub.server.chat.broker.publish(.read(channel, user: "zed", seq: Int64(seq))) }
        held.signal()
        for (i, c) in all.enumerated() {
            let seen = try (0..<3).map { _ in try c.push("read")["seq"]?.intValue ?? -1 }
            XCTAssertEqual(seen, [1, 2, 3], "subscriber \(i)")
        }
        // One subscriber a turn: the other four were reached in later turns.
        XCTAssertGreaterThanOrEqual(resumed - before, 4)
    }

    func testWhatComesDuringASpreadFanOutKeepsTheOrderItCameIn() throws {
        let all = try subscribers(4, limits: noBudget)
        let before = resumed
        let broker = hub.server.chat.broker
        let held = holdLoop()
        broker.publish(.read(channel, user: "zed", seq: 1))
        held.signal()
        // While read 1 goes round one subscriber a turn: another channel's push, then two more of
        // the conversation. Those may not pass the assignment on their way to anyone.
        broker.publish(.assignment(to: "ann", ConversationKey(service: "website", clientId: "ann"), agent: "bob"))
        broker.publish(.read(channel, user: "zed", seq: 2))
        broker.publish(.read(channel, user: "zed", seq: 3))
        for (i, c) in all.enumerated() {
            var seen: [String] = []
            while seen.count < 4 {
                let v = try c.next()
                switch v["type"]?.stringValue {
                case "read": seen.append("read \(v["seq"]?.intValue ?? -1)")
                case "assignment": seen.append("assignment")
                default: continue
                }
            }
            XCTAssertEqual(seen, ["read 1", "assignment", "read 2", "read 3"], "subscriber \(i)")
        }
        XCTAssertGreaterThanOrEqual(resumed - before, 3)
    }

    func testAConnectionThatLeavesDuringASpreadFanOutGetsWhatCameBeforeAndNothingAfter() throws {
        var all = try subscribers(4, limits: noBudget)
        let leaver = all.removeLast() // the last one reached
        let before = resumed
        // The publication's wake-up is ready before the unsubscribe: the turn that takes them
        // reaches the first subscriber, then reads the unsubscribe while the rest wait.
        let held = holdLoop()
        hub.server.chat.broker.publish(.read(channel, user: "zed", seq: 1))
        try leaver.ws.send(#"{"id":99,"op":"unsubscribe","channel":"\#(channel)"}"#)
        held.signal()
        XCTAssertEqual(try leaver.reply(to: 99)["ok"]?.boolValue, true)
        hub.server.chat.broker.publish(.read(channel, user: "zed", seq: 2))
        for (i, c) in all.enumerated() {
            XCTAssertEqual(try c.push("read")["seq"]?.intValue, 1, "subscriber \(i)")
            XCTAssertEqual(try c.push("read")["seq"]?.intValue, 2, "subscriber \(i)")
        }
        XCTAssertEqual(try leaver.push("read")["seq"]?.intValue, 1, "published before it left")
        XCTAssertTrue(leaver.noPush("read", within: 0.5), "nothing published after it left")
        XCTAssertGreaterThanOrEqual(resumed - before, 1, "the fan-out was spread over turns")
    }
}
