import Core
import Foundation
import Persistence
import Protocol
import XCTest
@testable import Hub

/// One "node" of a cluster inside the test process: its own loop, its own two Redis
/// connections and registries, recording every decision it makes.
final class ClusterTestNode: @unchecked Sendable {
    struct Decision: Equatable, CustomStringConvertible {
        let node: String
        let kind: String
        let channel: String
        let user: String
        var description: String { "\(kind) \(user) in \(channel) by \(node)" }
    }

    let id: String
    let running: RunningLoop
    let state: ClusterState
    let decisions: Locked<[Decision]>
    let revokes = Locked<[String]>([])
    private(set) var stopped = false

    /// Test timings: a dead node is reaped within 600 + 100 ms (plus a round trip).
    static var fastTiming: ClusterState.Timing {
        var t = ClusterState.Timing()
        t.heartbeatMs = 200
        t.nodeTTLMs = 600
        t.janitorMs = 100
        t.leaseMs = 300
        return t
    }

    /// `decisions` may be shared by every node of a test (one list, in order).
    init(_ id: String, cluster: String, endpoint: RedisEndpoint, decisions: Locked<[Decision]>,
         store: Locked<[Assignment]>, timing: ClusterState.Timing = ClusterTestNode.fastTiming) throws {
        self.id = id
        self.decisions = decisions
        running = try RunningLoop()
        let directory = Directory()
        directory.load(store.withLock { $0 })
        state = try ClusterState(endpoints: [endpoint], clusterName: cluster, nodeID: id, loop: running.loop,
                                 directory: directory, loadAssignments: { done in done(store.withLock { $0 }) },
                                 timing: timing)
        let revokes = self.revokes
        state.wire(membership: { kind, channel, user in
            decisions.withLock { $0.append(Decision(node: id, kind: kind, channel: channel, user: user.id)) }
        }, revoke: { channel, user in
            revokes.withLock { $0.append("\(user) \(channel)") }
        })
        state.start()
    }

    var presence: ClusterPresence { state.presence }
    var online: ClusterOnline { state.online }
    var assignments: ClusterAssignments { state.assignments }

    /// Stops the node: with `cleanup` as a graceful shutdown, without it silent like a crash.
    func stop(cleanup: Bool = true) {
        guard !stopped else { return }
        stopped = true
        state.stopAndWait(cleanup: cleanup)
        running.stop()
    }

    /// Whether the node's connections are both up and its mirrors have been read once.
    var isUp: Bool { running.syncValue { [state] _ in state.commands.isUp && state.events.isUp } }
}

/// A cluster of test nodes on one random cluster name, and a plain connection to look at Redis.
final class ClusterTestBed {
    let endpoint: RedisEndpoint
    let cluster = "t" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    let decisions = Locked<[ClusterTestNode.Decision]>([])
    let store = Locked<[Assignment]>([])
    let probeLoop: RunningLoop
    let redis: RedisConnection
    private(set) var nodes: [ClusterTestNode] = []

    init() throws {
        endpoint = try RedisTestEnv.endpoint()
        probeLoop = try RunningLoop()
        redis = try probeLoop.connect(endpoint, name: "t-cluster-probe")
    }

    var keys: ClusterKeys { ClusterKeys(clusterName: cluster) }

    func node(_ name: String, timing: ClusterState.Timing = ClusterTestNode.fastTiming) throws -> ClusterTestNode {
        let n = try ClusterTestNode(name, cluster: cluster, endpoint: endpoint, decisions: decisions, store: store, timing: timing)
        nodes.append(n)
        XCTAssertTrue(eventually { n.isUp }, "expected node \(name) connected to Redis within 5 s")
        return n
    }

    func call(_ args: [String]) throws -> RESPValue { try probeLoop.call(redis, args) }

    func decisions(_ kind: String, user: String) -> [ClusterTestNode.Decision] {
        decisions.withLock { $0.filter { $0.kind == kind && $0.user == user } }
    }

    /// Ends a node's connection of `role` ("commands" or "events") from the Redis side.
    func kill(_ node: ClusterTestNode, _ role: String) throws {
        let name = cluster + ":state-" + node.id + (role == "events" ? "-events" : "")
        let list = try call(["CLIENT", "LIST"]).string ?? ""
        guard let line = list.split(separator: "\n").first(where: { $0.contains(" name=\(name) ") }),
              let id = line.split(separator: " ").first(where: { $0.hasPrefix("id=") }) else {
            return XCTFail("expected CLIENT LIST to show \(name)")
        }
        XCTAssertEqual(try call(["CLIENT", "KILL", "ID", String(id.dropFirst(3))]), .integer(1))
    }

    /// Stops every node and deletes the cluster's keys.
    func tearDown() {
        for n in nodes { n.stop() }
        if let found = try? call(["KEYS", keys.prefix + "*"]).strings, !found.isEmpty {
            _ = try? call(["DEL"] + found)
        }
        probeLoop.close(redis)
        probeLoop.stop()
    }
}
