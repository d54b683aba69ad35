import Foundation
import XCTest
import Core
import Protocol
@testable import Hub

// Faults with real processes: hub nodes started as the README's operator page says (one
// PostgreSQL schema, the test environment's Redis instances, a cluster name of their own),
// then killed, their clients moved to another node. Nothing acknowledged is lost, duplicated or
// out of order at any client, and a dead node's users are seen offline within the stated bound.
final class ClusterFaultTests: XCTestCase {
    private var cluster: ClusterProcesses!
    private let channel = "conv:website:ann"

    override func setUpWithError() throws {
        cluster = try ClusterProcesses()
        _ = try TestTopology.redis()
    }

    override func tearDown() {
        cluster?.tearDown()
    }

    /// Starts a node; returns it with its public and bridge ports. `brokers`: the test
    /// environment's Redis instances unless given.
    private func startNode(_ id: String, brokers: [String]? = nil) throws -> (process: HubProcess, port: Int, bridge: Int) {
        let n = try cluster.start(id, brokers: brokers)
        return (n.process, n.port, n.bridge)
    }

    private func send(_ c: ChatClient, _ cmid: String) throws -> Int64 {
        let r = try c.result("send", ["channel": .string(channel), "text": .string(cmid), "client_msg_id": .string(cmid)])
        return try XCTUnwrap(r["seq"]?.intValue)
    }

    /// Reads `message` pushes until `seq` (each seq must be the next one).
    private func receive(_ c: ChatClient, after: inout Int64, through seq: Int64, _ who: String) throws {
        while after < seq {
            let m = try c.push("message", timeout: 15)
            let got = try XCTUnwrap(m["seq"]?.intValue)
            XCTAssertEqual(got, after + 1, "\(who): seq \(after + 1) next, in order, once")
            after = got
        }
    }

    func testANodeKilledWhileItsClientsChatLosesNothingAndItsUsersLeaveWithinTheBound() throws {
        let a = try startNode("a"), b = try startNode("b")
        let bridge = BridgeClient(port: a.bridge)
        try bridge.user("ann", "client")
        try bridge.user("wes", "website_agent")
        let assigned = try bridge.put("/v1/assignments/website/ann", #"{"agent_id":"wes"}"#)
        XCTAssertEqual(assigned.status, 200, assigned.text)
        // ann on a; wes and an observing admin on b.
        var ann = try ChatClient(port: a.port, token: TestHub.token("ann", .client))
        let wes = try ChatClient(port: b.port, token: TestHub.token("wes", .websiteAgent))
        let root = try ChatClient(port: b.port, token: TestHub.token("root", .admin))
        for c in [ann, wes, root] { _ = try c.result("subscribe", ["channel": .string(channel)]) }
        // Presence decided on a reaches b's view one Redis round trip or two later.
        var present: [String] = []
        XCTAssertTrue(try eventually(5) {
            present = (try root.result("presence", ["channel": .string(channel)])["online"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }.sorted()
            return present == ["ann", "wes"]
        }, "node b sees ann, who is on a: \(present)")

        var acked: [Int64] = []
        for i in 0..<40 {
            acked.append(try send(ann, "a\(i)"))
            if i % 4 == 0 { acked.append(try send(wes, "w\(i)")) }
        }
        var annSeen: Int64 = 0, wesSeen: Int64 = 0
        try receive(ann, after: &annSeen, through: acked.max() ?? 0, "ann")
        try receive(wes, after: &wesSeen, through: acked.max() ?? 0, "wes")

        // Node a dies mid-conversation, with sends in flight.
        let killedAt = Date()
        a.process.signal(SIGKILL)
        XCTAssertNotNil(a.process.waitForExit(timeout: 5))
        // wes keeps writing meanwhile, on the live node.
        for i in 40..<50 { acked.append(try send(wes, "w\(i)")) }

        // ann's node is gone: everyone on b sees her leave within the bound (7 s), once.
        let leave = try root.push("leave", timeout: 12)
        let offlineAfter = Date().timeIntervalSince(killedAt)
        XCTAssertEqual(leave["user"]?["id"]?.stringValue ?? leave["user"]?.stringValue, "ann")
        XCTAssertLessThanOrEqual(offlineAfter, 8.0, "a dead node's users are offline within the bound")
        print("cluster fault: a killed node's user was seen offline after \(String(format: "%.1f", offlineAfter)) s")

        // ann reconnects to b and recovers with since: the rest once, in order, then live.
        let reconnectedAt = Date()
        ann = try ChatClient(port: b.port, token: TestHub.token("ann", .client))
        let sub = try ann.result("subscribe", ["channel": .string(channel), "since": .int(annSeen)])
        for m in sub["messages"]?.arrayValue ?? [] {
            XCTAssertEqual(m["seq"]?.intValue, annSeen + 1, "ann: the catch-up continues where she was")
            annSeen = m["seq"]?.intValue ?? annSeen
        }
        try receive(ann, after: &annSeen, through: acked.max() ?? 0, "ann")
        let caughtUp = Date().timeIntervalSince(reconnectedAt)
        print("cluster fault: the killed node's client was caught up on another node \(String(format: "%.0f", caughtUp * 1000)) ms after reconnecting")
        // A retry of a send acknowledged on the dead node is a duplicate, never a second message.
        let retry = try ann.result("send", ["channel": .string(channel), "text": "a39", "client_msg_id": "a39"])
        XCTAssertEqual(retry["duplicate"]?.boolValue, true)
        acked.append(try send(ann, "after"))
        try receive(wes, after: &wesSeen, through: acked.max() ?? 0, "wes")
        try receive(ann, after: &annSeen, through: acked.max() ?? 0, "ann")
        XCTAssertEqual(acked.sorted(), (1...Int64(acked.count)).map { $0 }, "every ack a distinct seq, no hole")
        XCTAssertTrue(wes.noPush("message", within: 0.5))
        _ = b
    }

    func testRedisCrashingAndComingBackDuringAFloodLosesNothing() throws {
        let redis = try PrivateRedis()
        defer { redis.stop() }
        let a = try startNode("a", brokers: [redis.url]), b = try startNode("b", brokers: [redis.url])
        let bridge = BridgeClient(port: a.bridge)
        try bridge.user("ann", "client")
        try bridge.user("wes", "website_agent")
        XCTAssertEqual(try bridge.put("/v1/assignments/website/ann", #"{"agent_id":"wes"}"#).status, 200)
        let ann = try ChatClient(port: a.port, token: TestHub.token("ann", .client))
        let wes = try ChatClient(port: b.port, token: TestHub.token("wes", .websiteAgent))
        for c in [ann, wes] { _ = try c.result("subscribe", ["channel": .string(channel)]) }

        // A flood from node a; Redis dies a third of the way in and is back a second later,
        // empty: the bus lost what was published meanwhile, and every subscription.
        var acked: [Int64] = []
        var wesSeen: Int64 = 0
        for i in 0..<300 {
            if i == 100 { redis.crash() }
            if i == 200 {
                Thread.sleep(forTimeInterval: 1) // both nodes notice and retry in vain meanwhile
                try redis.start()
            }
            acked.append(try send(ann, "f\(i)")) // sends commit and are acknowledged without Redis
        }
        // wes, on the other node, gets every one in order and once (what the bus lost is read
        // from the store when node b's subscriber is back, or by its periodic check).
        try receive(wes, after: &wesSeen, through: acked.max() ?? 0, "wes")
        XCTAssertEqual(acked, (1...300).map { Int64($0) })
        XCTAssertTrue(wes.noPush("message", within: 0.5), "nothing twice")
        // And live again across nodes.
        acked.append(try send(ann, "after"))
        try receive(wes, after: &wesSeen, through: 301, "wes")
        _ = b
    }
}
