import Core
import Foundation
import Notifications
import Persistence
import Protocol
import XCTest
@testable import Hub

// The cluster registries under real sessions: two hub nodes in this process (see
// ClusterHubNode), WebSocket clients on each. What a client sees when the connection limit is
// passed across nodes, and join/leave/presence between nodes.
final class ClusterSessionTests: XCTestCase {
    private var nodes: [ClusterHubNode] = []
    private var store: SQLiteStore!
    private var bed: ClusterTestBed!

    override func setUpWithError() throws {
        bed = try ClusterTestBed()
        let dir = TestDirectory.make("cluster-sessions")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try SQLiteStore(path: dir + "/hub.sqlite", now: wallMillis(),
                                messageWording: MessageNotificationText.wording)
    }

    override func tearDown() {
        for n in nodes { n.stop() }
        store?.close()
        bed?.tearDown()
    }

    private func twoNodes(_ limits: ChatLimits = ChatLimits()) throws -> (ClusterHubNode, ClusterHubNode) {
        let routers = Locked<[Router]>([])
        let a = try ClusterHubNode("a", cluster: bed.cluster, endpoint: bed.endpoint, store: store, routers: routers, chatLimits: limits)
        let b = try ClusterHubNode("b", cluster: bed.cluster, endpoint: bed.endpoint, store: store, routers: routers, chatLimits: limits)
        nodes = [a, b]
        return (a, b)
    }

    func testAFourthConnectionOnAnotherNodeIsAuthenticatedThenClosed1008() throws {
        var limits = ChatLimits()
        limits.maxConnectionsPerUser = 3
        let (a, b) = try twoNodes(limits)
        let held = [try a.client("ann", .client), try a.client("ann", .client), try b.client("ann", .client)]
        XCTAssertTrue(try eventually { try self.bed.call(["HGET", self.bed.keys.online, "t|ann"]).string == "3" })
        let fourth = try b.client("ann", .client) // auth answered ok: b holds one of ann's connections
        XCTAssertFalse(fourth.session.isEmpty, "expected the auth reply first")
        XCTAssertThrowsError(try fourth.next(), "expected the connection closed") { e in
            XCTAssertEqual("\(e)", "closed with 1008 too many connections for this user")
        }
        XCTAssertTrue(try eventually { try self.bed.call(["HGET", self.bed.keys.online, "t|ann"]).string == "3" },
                      "the refused connection is counted out again")
        for c in held { XCTAssertNoThrow(try c.result("presence", ["channel": "conv:website:ann"]), "the first three stay") }
        try held[0].ws.close()
        XCTAssertTrue(try eventually { try self.bed.call(["HGET", self.bed.keys.online, "t|ann"]).string == "2" })
        let fifth = try b.client("ann", .client)
        Thread.sleep(forTimeInterval: 0.3) // past the round trip that would close it
        XCTAssertNoThrow(try fifth.result("presence", ["channel": "conv:website:ann"]), "a fourth fits once one closed")
    }

    func testJoinLeaveAndPresenceAcrossNodes() throws {
        let key = ConversationKey(service: "website", clientId: "ann")
        _ = try waitForStore { store.setAssignment(Assignment(conversation: key, agentId: "wes"), now: 1, completion: $0) }.get()
        let (a, b) = try twoNodes()
        let channel: JSON = "conv:website:ann"
        let wes = try b.client("wes", .websiteAgent)
        _ = try wes.result("subscribe", ["channel": channel])
        // Decided one Redis round trip after the subscribe, when the joining connection is
        // subscribed already: as on one node, nobody is told of their own join.
        XCTAssertTrue(wes.noPush("join", within: 0.5), "the joining connection is not told of its own join")
        let ann1 = try a.client("ann", .client)
        _ = try ann1.result("subscribe", ["channel": channel])
        XCTAssertEqual(try wes.push("join")["user"]?["id"]?.stringValue, "ann", "expected ann's join on the other node")
        let ann2 = try b.client("ann", .client)
        _ = try ann2.result("subscribe", ["channel": channel])
        XCTAssertTrue(wes.noPush("join", within: 0.5), "ann's second connection, on another node, is no new join")
        let online = try wes.result("presence", ["channel": channel])["online"]?.arrayValue ?? []
        XCTAssertEqual(online.compactMap { $0["id"]?.stringValue }.sorted(), ["ann", "wes"])
        try ann1.ws.close()
        XCTAssertTrue(wes.noPush("leave", within: 0.5), "ann is still in on b")
        try ann2.ws.close()
        XCTAssertEqual(try wes.push("leave")["user"]?["id"]?.stringValue, "ann", "the last connection anywhere is a leave")
        XCTAssertTrue(wes.noPush("leave", within: 0.5), "exactly one leave")
    }
}
