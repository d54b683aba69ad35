import Foundation
import XCTest
import Core
import Protocol
@testable import Hub

// Several in-process nodes on one PostgreSQL schema and the Redis instances of the test
// environment: what a client on one node sends reaches subscribers on every node, in seq order,
// once; concurrent writers on every node share one gap-free sequence; a publication the bus
// loses is read from the store.
final class ClusterTests: XCTestCase {
    var hub: TestHub!
    let annWebsite = "conv:website:ann"

    override func tearDown() { hub?.stop() }

    private func start(nodes: Int) throws {
        hub = try TestHub(topology: .cluster(nodes: nodes))
        try hub.assign("wes", to: "ann", for: "website")
    }

    /// A client on node `node` (0-based).
    private func client(_ id: String, _ role: Role, on node: Int) throws -> ChatClient {
        try ChatClient(port: hub.servers[node].publicListener.port, token: TestHub.token(id, role))
    }

    func testAMessageSentOnOneNodeReachesSubscribersOnEveryOtherNode() throws {
        try start(nodes: 2)
        let ann = try client("ann", .client, on: 0)
        let wes = try client("wes", .websiteAgent, on: 1)
        let admin = try client("root", .admin, on: 1)
        for c in [ann, wes, admin] { _ = try c.result("subscribe", ["channel": .string(annWebsite)]) }
        let ack = try ann.result("send", ["channel": .string(annWebsite), "text": "hello from node 0", "client_msg_id": "n0-1"])
        XCTAssertEqual(ack["seq"]?.intValue, 1)
        for c in [wes, admin] {
            let m = try c.push("message")
            XCTAssertEqual(m["seq"]?.intValue, 1)
            XCTAssertEqual(m["text"]?.stringValue, "hello from node 0")
        }
        XCTAssertEqual(try ann.push("message")["seq"]?.intValue, 1, "the sender's own subscription too")
        _ = try wes.result("send", ["channel": .string(annWebsite), "text": "and back from node 1", "client_msg_id": "n1-1"])
        XCTAssertEqual(try ann.push("message")["seq"]?.intValue, 2, "the other way too")
        // wes's reply moved his read mark (made on node 1): the sender on node 0 sees the tick.
        let read = try ann.push("read")
        XCTAssertEqual(read["user"]?.stringValue, "wes")
        XCTAssertEqual(read["seq"]?.intValue, 2)
    }

    func testThreeNodesWritingOneConversationShareOneGapFreeSequenceSeenInOrderEverywhere() throws {
        try start(nodes: 3)
        let watchers = try (0..<3).map { try client("root", .admin, on: $0) }
        for w in watchers { _ = try w.result("subscribe", ["channel": .string(annWebsite)]) }
        let perNode = 60
        let acked = Locked<[Int64]>([])
        let failures = Locked<[String]>([])
        let ports = hub.servers.map { $0.publicListener.port }
        let channel = annWebsite
        let senders = (0..<3).map { node in
            Thread {
                // ann on nodes 0 and 2, wes on node 1: three writers of one conversation.
                let (id, role): (String, Role) = node == 1 ? ("wes", .websiteAgent) : ("ann", .client)
                guard let c = try? ChatClient(port: ports[node], token: TestHub.token(id, role)) else { return }
                for i in 0..<perNode {
                    let reply = try? c.request("send", ["channel": .string(channel), "text": .string("n\(node)-\(i)"),
                                                      "client_msg_id": .string("n\(node)-\(i)")])
                    if let reply, reply["ok"]?.boolValue != true { failures.withLock { $0.append(reply.text) } }
                    if reply == nil { failures.withLock { $0.append("node \(node) send \(i): no reply") } }
                    if let r = reply?["result"], let seq = r["seq"]?.intValue {
                        acked.withLock { $0.append(seq) }
                    }
                }
            }
        }
        for t in senders { t.start() }
        let total = 3 * perNode
        for (node, w) in watchers.enumerated() {
            var seqs: [Int64] = []
            while seqs.count < total { seqs.append(try w.push("message", timeout: 20)["seq"]?.intValue ?? -1) }
            XCTAssertEqual(seqs, (1...Int64(total)).map { $0 }, "node \(node) delivers 1…\(total) once each, in order")
        }
        for t in senders { while t.isExecuting { Thread.sleep(forTimeInterval: 0.01) } }
        XCTAssertEqual(failures.withLock { $0 }, [], "every send answered ok")
        XCTAssertEqual(acked.withLock { $0.sorted() }, (1...Int64(total)).map { $0 }, "every ack a distinct seq: no hole, no duplicate")
        for w in watchers { XCTAssertTrue(w.noPush("message", within: 0.3), "nothing delivered twice") }
    }

    func testAMessageTheBusLostIsReadFromTheStore() throws {
        try start(nodes: 2)
        let ann = try client("ann", .client, on: 0)
        let wes = try client("wes", .websiteAgent, on: 1)
        for c in [ann, wes] { _ = try c.result("subscribe", ["channel": .string(annWebsite)]) }
        _ = try ann.result("send", ["channel": .string(annWebsite), "text": "one", "client_msg_id": "l1"])
        XCTAssertEqual(try wes.push("message")["seq"]?.intValue, 1)
        // Every subscriber connection of the cluster cut: what is published before they are
        // back is lost on the bus, and must reach wes from the store once node 1 is back.
        try killPubSubClients()
        _ = try ann.result("send", ["channel": .string(annWebsite), "text": "two", "client_msg_id": "l2"])
        _ = try ann.result("send", ["channel": .string(annWebsite), "text": "three", "client_msg_id": "l3"])
        XCTAssertEqual(try wes.push("message", timeout: 10)["seq"]?.intValue, 2)
        XCTAssertEqual(try wes.push("message", timeout: 10)["seq"]?.intValue, 3)
        XCTAssertTrue(wes.noPush("message", within: 0.5), "nothing twice")
        _ = try ann.result("send", ["channel": .string(annWebsite), "text": "four", "client_msg_id": "l4"])
        XCTAssertEqual(try wes.push("message", timeout: 10)["seq"]?.intValue, 4, "and live again")
    }

    /// A node stopping closes its Redis connections from its loops. A loop with no WebSocket
    /// ends as soon as it is told to shut down, so the close must be queued before that: queued
    /// after, it never ran and the node waited out the broker's 2 s deadline with its
    /// connections still open.
    func testANodeWithIdleLoopsStopsAtOnceAndClosesItsRedisConnections() throws {
        // Four rounds: the old order lost the race in about one stop in four.
        for round in 1...4 {
            try start(nodes: 2)
            let names = try redisClientNames()
            let cluster = try XCTUnwrap(hub.database?.name)
            XCTAssertEqual(names.filter { $0.hasPrefix("\(cluster):node1-") }.count, 2 * (try TestTopology.redis().count),
                           "node 1 holds a command and a subscriber connection per Redis: \(names)")
            let started = Date()
            hub.servers[1].shutdown(deadlineMs: 2_000)
            let took = Date().timeIntervalSince(started)
            XCTAssertLessThan(took, 1.5, "round \(round): a node with no connections stops without waiting out a deadline")
            XCTAssertTrue(eventually(5) { ((try? self.redisClientNames()) ?? ["?"]).allSatisfy { !$0.hasPrefix("\(cluster):node1-") } },
                          "round \(round): its connections are gone from Redis: \((try? redisClientNames()) ?? [])")
            XCTAssertFalse(try redisClientNames().filter { $0.hasPrefix("\(cluster):node0-") }.isEmpty, "node 0's are not")
            hub.stop()
            hub = nil
        }
    }

    /// The names of the clients connected to every Redis of the test environment.
    private func redisClientNames() throws -> [String] {
        var names: [String] = []
        for reply in try callEveryRedis(["CLIENT", "LIST"]) {
            guard case .bulkString(let list) = reply else { throw TestError("CLIENT LIST: no list") }
            for line in String(decoding: list, as: UTF8.self).split(separator: "\n") {
                if let field = line.split(separator: " ").first(where: { $0.hasPrefix("name=") }) {
                    names.append(String(field.dropFirst(5)))
                }
            }
        }
        return names
    }

    /// CLIENT KILL TYPE pubsub on every Redis of the test environment.
    private func killPubSubClients() throws {
        _ = try callEveryRedis(["CLIENT", "KILL", "TYPE", "pubsub"])
    }

    /// One command to every Redis of the test environment, on a connection of its own; the replies
    /// in the environment's order.
    private func callEveryRedis(_ command: [String]) throws -> [RESPValue] {
        let loop = try RunningLoop()
        defer { loop.stop() }
        return try TestTopology.redis().map { endpoint in
            let c = try loop.connect(endpoint, name: "cluster-test")
            defer { loop.close(c) }
            return try loop.call(c, command)
        }
    }

    func testHealthSaysWhetherTheNodeHearsTheOthersAndSessionsNameTheirNode() throws {
        try start(nodes: 2)
        let healthy = try BridgeClient(port: hub.servers[1].publicListener.port).send("GET", "/healthz", key: nil)
        XCTAssertEqual(healthy.status, 200, healthy.text)
        XCTAssertEqual(healthy.json["status"]?.stringValue, "ok")
        XCTAssertEqual(healthy.json["node"]?.stringValue, "node1")
        XCTAssertEqual(healthy.json["redis"]?.arrayValue?.allSatisfy { $0["up"]?.boolValue == true }, true, healthy.text)
        let session = try ChatClient(port: hub.servers[1].publicListener.port).request("auth", ["token": .string(TestHub.token("ann", .client))])
        XCTAssertTrue(session["result"]?["session"]?.stringValue?.hasPrefix("node1/") == true, "session ids are unique across nodes: \(session.text)")
        hub.stop()
        hub = nil

        // A node whose Redis is not there: it still starts and answers, but says it is degraded.
        let closedPort = try PrivateRedis.freePort()
        hub = try TestHub(topology: .postgres) { $0.brokers = [RedisEndpoint(host: "127.0.0.1", port: closedPort)] }
        let degraded = try BridgeClient(port: hub.port).send("GET", "/healthz", key: nil)
        XCTAssertEqual(degraded.status, 503, degraded.text)
        XCTAssertEqual(degraded.json["status"]?.stringValue, "degraded")
        XCTAssertEqual(degraded.json["redis"]?[0]?["up"]?.boolValue, false)
    }
}
