import Dispatch
import Protocol
import XCTest
@testable import Hub

// Publications reach a loop's subscribers by sweeps (`LoopRegistry`): each subscriber takes what
// it has not had of one channel at once, a sweep may be spread over turns, and what comes for
// its channel meanwhile joins it. What a subscriber sees must not change: every channel's
// publications in order, each once, and publications of different channels in the order they
// came; nothing from before it subscribed or after it left.
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

    /// Publishes `first` and holds the loop in the turn after the next one, when a sweep with
    /// no budget has reached the first two subscribers and not the others; the returned
    /// semaphore lets the loop go on. What is published meanwhile comes during the sweep.
    private func holdMidSweep(after first: Publication) -> DispatchSemaphore {
        let release = DispatchSemaphore(value: 0), holding = DispatchSemaphore(value: 0)
        let held = holdLoop()
        // One drain for both jobs: the publication's, then this one, whose end-of-drain body runs
        // after the sweep's first turn and asks for the turn after its resumption.
        hub.server.chat.broker.publish(first)
        hub.server.loops[0].execute { loop in
            loop.atEndOfMailbox { loop.resumeNextTurn { holding.signal(); release.wait() } }
        }
        held.signal()
        holding.wait()
        return release
    }

    /// The next `count` pushes of `read` and `assignment` on `c`, as text.
    private func seen(_ c: ChatClient, _ count: Int) throws -> [String] {
        var seen: [String] = []
        while seen.count < count {
            let v = try c.next()
            switch v["type"]?.stringValue {
            case "read": seen.append("read \(v["seq"]?.intValue ?? -1)")
            case "assignment": seen.append("assignment")
            default: continue
            }
        }
        return seen
    }

    func testWhatComesForTheChannelDuringASweepJoinsItAndReachesEveryoneOnce() throws {
        let all = try subscribers(4, limits: noBudget)
        let release = holdMidSweep(after: .read(channel, user: "zed", seq: 1))
        defer { release.signal() }
        XCTAssertEqual(resumed, 1, "the sweep went on for one turn and is held halfway")
        // Read 2 and 3 join the sweep: the two still ahead get 1, 2, 3 together, and the
        // sweep goes round once more for the two it had passed.
        for seq in 2...3 { hub.server.chat.broker.publish(.read(channel, user: "zed", seq: Int64(seq))) }
        release.signal()
        for (i, c) in all.enumerated() {
            XCTAssertEqual(try seen(c, 3), ["read 1", "read 2", "read 3"], "subscriber \(i)")
            XCTAssertTrue(c.noPush("read", within: 0.2), "subscriber \(i): each once")
        }
    }

    func testAnotherChannelsPushDuringASweepWaitsForItAndKeepsTheOrder() throws {
        let all = try subscribers(4, limits: noBudget)
        let broker = hub.server.chat.broker
        let release = holdMidSweep(after: .read(channel, user: "zed", seq: 1))
        defer { release.signal() }
        // Another channel's push, then two of the conversation: read 2 and 3 may not pass the
        // assignment on their way to anyone, so they wait for it instead of joining the sweep.
        broker.publish(.assignment(to: "ann", ConversationKey(service: "website", clientId: "ann"), agent: "bob"))
        broker.publish(.read(channel, user: "zed", seq: 2))
        broker.publish(.read(channel, user: "zed", seq: 3))
        release.signal()
        for (i, c) in all.enumerated() {
            XCTAssertEqual(try seen(c, 4), ["read 1", "assignment", "read 2", "read 3"], "subscriber \(i)")
        }
    }

    func testAConnectionThatLeavesDuringASweepGetsWhatCameBeforeAndNothingAfter() throws {
        var all = try subscribers(4, limits: noBudget)
        let leaver = all.removeLast() // not reached yet when the loop is held
        let release = holdMidSweep(after: .read(channel, user: "zed", seq: 1))
        defer { release.signal() }
        // Read by the next turn, before the sweep goes on: leaving finishes the sweep first.
        try leaver.ws.send(#"{"id":99,"op":"unsubscribe","channel":"\#(channel)"}"#)
        release.signal()
        XCTAssertEqual(try leaver.reply(to: 99)["ok"]?.boolValue, true)
        hub.server.chat.broker.publish(.read(channel, user: "zed", seq: 2))
        for (i, c) in all.enumerated() {
            XCTAssertEqual(try c.push("read")["seq"]?.intValue, 1, "subscriber \(i)")
            XCTAssertEqual(try c.push("read")["seq"]?.intValue, 2, "subscriber \(i)")
        }
        XCTAssertEqual(try leaver.push("read")["seq"]?.intValue, 1, "published before it left")
        XCTAssertTrue(leaver.noPush("read", within: 0.5), "nothing published after it left")
    }
}
