import Core
import Foundation
import Protocol
import XCTest
@testable import Hub

// The cluster broker: the shard ring (a fixed hash, the same on every node, channels spread
// over every instance), the envelope between nodes, and two in-process "nodes" (two hubs, each
// Router behind a RedisBroker) on the real Redis instances: a publish on one reaches the
// other's subscriber exactly once, node interest drives SUBSCRIBE and UNSUBSCRIBE, each
// instance carries only its own channels, and a killed subscriber connection comes back with
// its channels and asks for a catch-up.
final class RedisBrokerTests: XCTestCase {
    // MARK: pure

    func testTheRingHashIsFixedAcrossProcesses() {
        // FNV-1a 64 ("" and "a" are FNV's published values) through fmix64: pinned, since any
        // change would split a running cluster into nodes that disagree.
        XCTAssertEqual(ShardRing.hash(""), 0xefd0_1f60_ba99_2926)
        XCTAssertEqual(ShardRing.hash("a"), 0x82a2_a958_a9be_ce5b)
        XCTAssertEqual(ShardRing.hash("montrose:conv:website:c1"), 0xb2ee_e511_740a_22f2)
    }

    func testTwoRingsFromOneListAgreeAndSplitChannelsOverEveryInstance() {
        let list = ["127.0.0.1:6380", "127.0.0.1:6381", "127.0.0.1:6382"]
        let a = ShardRing(instances: list), b = ShardRing(instances: list)
        var counts = [0, 0, 0]
        for i in 0..<30_000 {
            let channel = "conv:website:client-\(i)"
            XCTAssertEqual(a.shard(for: channel), b.shard(for: channel))
            counts[a.shard(for: channel)] += 1
        }
        for (i, n) in counts.enumerated() {
            XCTAssertTrue((6_000...14_000).contains(n), "expected instance \(i) to carry about a third of 30,000 channels, got \(n)")
        }
        // One more instance moves about a quarter of the channels, all of them to the new one.
        let grown = ShardRing(instances: list + ["127.0.0.1:6383"])
        var moved = 0
        for i in 0..<30_000 {
            let channel = "conv:website:client-\(i)"
            let before = a.shard(for: channel), after = grown.shard(for: channel)
            if before != after {
                moved += 1
                XCTAssertEqual(after, 3, "a channel moved between old instances")
            }
        }
        XCTAssertTrue((4_500...10_500).contains(moved), "expected about 7,500 channels to move, got \(moved)")
    }

    func testAnEnvelopeSurvivesTheTrip() {
        let cases = [
            BrokerEnvelope(kind: .push, origin: "node-a", seq: 42, notificationID: nil, body: Array("{\"type\":\"message\"}".utf8)),
            BrokerEnvelope(kind: .push, origin: "n", seq: nil, notificationID: -7, body: []),
            BrokerEnvelope(kind: .push, origin: "node-ü", seq: Int64.max, notificationID: Int64.min, body: [0, 1, 255]),
            BrokerEnvelope(kind: .revoke, origin: "node-b", seq: nil, notificationID: nil, body: Array("agent-1".utf8)),
        ]
        for e in cases { XCTAssertEqual(BrokerEnvelope(decoding: e.encoded()), e) }
        XCTAssertNil(BrokerEnvelope(decoding: [2, 1, 0, 0]), "another version is not read")
        XCTAssertNil(BrokerEnvelope(decoding: [1, 1, 1, 1, 65, 0, 0]), "a cut seq is not read")
        XCTAssertNil(BrokerEnvelope(decoding: [1, 9, 0, 0]), "an unknown kind is not read")
        XCTAssertNil(BrokerEnvelope(decoding: [1, 1, 0, 200, 65]), "a cut node id is not read")
    }

    // MARK: two nodes on real Redis

    /// Two hubs ("nodes"), each with a RedisBroker over both instances, under one fresh cluster name.
    private final class TwoNodes {
        let a: TestHub, b: TestHub
        let brokerA: RedisBroker, brokerB: RedisBroker
        let endpoints: [RedisEndpoint]
        let cluster: String
        let catchUps = Locked<[String]>([])

        init(options: RedisBroker.Options = RedisBroker.Options()) throws {
            endpoints = [try RedisTestEnv.endpoint("MONTROSE_TEST_REDIS"), try RedisTestEnv.endpoint("MONTROSE_TEST_REDIS2")]
            cluster = String(RedisTestEnv.prefix().dropLast())
            var o = options
            o.cluster = cluster
            a = try TestHub(loops: 1)
            b = try TestHub(loops: 2)
            brokerA = RedisBroker(router: a.server.chat.router, loops: a.server.loops, endpoints: endpoints, nodeID: "node-a", options: o)
            brokerB = RedisBroker(router: b.server.chat.router, loops: b.server.loops, endpoints: endpoints, nodeID: "node-b", options: o)
            brokerB.onCatchUpNeeded { [catchUps] channels in catchUps.withLock { $0 += channels } }
            brokerA.start()
            brokerB.start()
            for broker in [brokerA, brokerB] {
                XCTAssertTrue(eventually { broker.status().allSatisfy(\.up) }, "expected every shard up: \(broker.status())")
            }
        }

        func stop() {
            brokerA.stop()
            brokerB.stop()
            a.stop()
            b.stop()
        }

        /// PUBSUB NUMSUB of `channel` on instance `i`: how many connections subscribe to it.
        func subscriberCount(_ channel: String, on i: Int, loop: RunningLoop) throws -> Int64 {
            let c = try loop.connect(endpoints[i], name: "t-inspect")
            defer { loop.close(c) }
            return try loop.call(c, ["PUBSUB", "NUMSUB", "\(cluster):\(channel)"]).elements?.last?.integer ?? -1
        }

        /// The channels (without the cluster prefix) instance `i` has subscribers for.
        func channels(on i: Int, loop: RunningLoop) throws -> Set<String> {
            let c = try loop.connect(endpoints[i], name: "t-inspect")
            defer { loop.close(c) }
            let listed = try loop.call(c, ["PUBSUB", "CHANNELS", cluster + ":*"]).elements ?? []
            return Set(listed.compactMap(\.string).map { String($0.dropFirst(cluster.count + 1)) })
        }
    }

    private func push(_ channel: String, _ seq: Int64) -> Publication {
        .push(channel: channel, seq: seq) { w in
            w.key("type"); w.string("message"); w.key("channel"); w.string(channel); w.key("seq"); w.int(seq)
        }
    }

    func testAPublishOnOneNodeReachesTheOthersSubscriberExactlyOnce() throws {
        let nodes = try TwoNodes()
        defer { nodes.stop() }
        let channel = "conv:support:twonodes"
        let onB = try ChatClient(port: nodes.b.port, token: TestHub.token("reader-b", .admin))
        let onA = try ChatClient(port: nodes.a.port, token: TestHub.token("reader-a", .admin))
        _ = try onB.result("subscribe", ["channel": .string(channel)])
        _ = try onA.result("subscribe", ["channel": .string(channel)])
        // A second subscriber on B: still one Redis subscription per node.
        let onB2 = try ChatClient(port: nodes.b.port, token: TestHub.token("reader-b2", .admin))
        _ = try onB2.result("subscribe", ["channel": .string(channel)])
        let inspector = try RunningLoop(index: 9)
        defer { inspector.stop() }
        let shard = nodes.brokerB.ring.shard(for: channel)
        XCTAssertTrue(try eventually { try nodes.subscriberCount(channel, on: shard, loop: inspector) == 2 },
                      "expected one Redis subscription per node (2) for \(channel) on instance \(shard)")
        for seq in Int64(1)...50 { nodes.brokerA.publish(push(channel, seq)) }
        for reader in [onB, onB2, onA] {
            for seq in Int64(1)...50 {
                XCTAssertEqual(try reader.push("message")["seq"]?.intValue, seq, "expected each publication once, in order")
            }
            XCTAssertTrue(reader.noPush("message", within: 0.3), "expected no second copy")
        }
        // Interest gone on B: B's one Redis subscription ends (A's stays); then on A: the
        // channel leaves PUBSUB CHANNELS.
        _ = try onB.result("unsubscribe", ["channel": .string(channel)])
        _ = try onB2.result("unsubscribe", ["channel": .string(channel)])
        XCTAssertTrue(try eventually { try nodes.subscriberCount(channel, on: shard, loop: inspector) == 1 },
                      "expected only node A subscribed once B has no subscriber")
        _ = try onA.result("unsubscribe", ["channel": .string(channel)])
        XCTAssertTrue(try eventually { try !nodes.channels(on: shard, loop: inspector).contains(channel) },
                      "expected \(channel) to leave PUBSUB CHANNELS once no node has a subscriber")
    }

    func testAMembershipPushSkipsItsMemberOnTheOtherNodeAndHostileEnvelopesAreCounted() throws {
        let nodes = try TwoNodes()
        defer { nodes.stop() }
        let channel = "conv:support:members"
        let ann = try ChatClient(port: nodes.b.port, token: TestHub.token("ann", .admin))
        let bob = try ChatClient(port: nodes.b.port, token: TestHub.token("bob", .admin))
        _ = try ann.result("subscribe", ["channel": .string(channel)])
        _ = try bob.result("subscribe", ["channel": .string(channel)])
        let inspector = try RunningLoop(index: 9)
        defer { inspector.stop() }
        let shard = nodes.brokerB.ring.shard(for: channel)
        XCTAssertTrue(try eventually { try nodes.subscriberCount(channel, on: shard, loop: inspector) == 1 })
        // Hostile envelopes from "elsewhere": a seq of 0, a revoke of a user id that cannot be one.
        let raw = try inspector.connect(nodes.endpoints[shard], name: "t-hostile")
        defer { inspector.close(raw) }
        let bad = [BrokerEnvelope(kind: .push, origin: "node-x", seq: 0, notificationID: nil, body: Array("{}".utf8)),
                   BrokerEnvelope(kind: .revoke, origin: "node-x", seq: nil, notificationID: nil, body: Array("not a user".utf8))]
        inspector.sync { _ in
            for e in bad { raw.send([Array("PUBLISH".utf8), Array("\(nodes.cluster):\(channel)".utf8), e.encoded()], nil) }
        }
        XCTAssertTrue(eventually { nodes.brokerB.unreadableEnvelopes == 2 }, "expected both counted: \(nodes.brokerB.unreadableEnvelopes)")
        nodes.brokerA.publish(.push(channel: channel, member: "ann") { w in
            w.key("type"); w.string("join"); w.key("channel"); w.string(channel)
            w.key("user"); w.beginObject(); w.key("id"); w.string("ann"); w.endObject()
        })
        XCTAssertEqual(try bob.push("join")["user"]?["id"]?.stringValue, "ann")
        XCTAssertTrue(ann.noPush("join", within: 0.3), "nobody is told of their own join, from another node either")
    }

    func testCommandsGoToTheInstanceThatCarriesTheKey() throws {
        let nodes = try TwoNodes()
        defer { nodes.stop() }
        let inspector = try RunningLoop(index: 9)
        defer { inspector.stop() }
        for i in 0..<20 {
            let key = nodes.brokerA.keyPrefix + "k\(i)"
            let done = DispatchSemaphore(value: 0)
            let answer = Locked<Result<RESPValue, RedisError>?>(nil)
            nodes.brokerA.command([Array("SET".utf8), Array(key.utf8), Array("v\(i)".utf8), Array("PX".utf8), Array("60000".utf8)], forKey: key) { r in
                answer.withLock { $0 = r }
                done.signal()
            }
            XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
            XCTAssertEqual(answer.withLock { $0 }, .success(.simpleString("OK")))
            let shard = nodes.brokerA.ring.shard(for: key)
            let c = try inspector.connect(nodes.endpoints[shard], name: "t-get")
            defer { inspector.close(c) }
            XCTAssertEqual(try inspector.call(c, ["GET", key]).string, "v\(i)", "expected \(key) on instance \(shard)")
            _ = try inspector.call(c, ["DEL", key])
        }
    }

    func testEachInstanceCarriesOnlyTheChannelsTheRingGivesIt() throws {
        let nodes = try TwoNodes()
        defer { nodes.stop() }
        let channels = (0..<300).map { "conv:website:split-\($0)" }
        for c in channels { nodes.brokerB.nodeInterestChanged(c, true) }
        let inspector = try RunningLoop(index: 9)
        defer { inspector.stop() }
        let expected = (0..<2).map { i in Set(channels.filter { nodes.brokerB.ring.shard(for: $0) == i }) }
        XCTAssertTrue(expected.allSatisfy { $0.count > 60 }, "expected the ring to give each instance a fair share: \(expected.map(\.count))")
        for i in 0..<2 {
            XCTAssertTrue(try eventually { try nodes.channels(on: i, loop: inspector).filter { $0.hasPrefix("conv:") } == expected[i] },
                          "expected instance \(i) to carry exactly its \(expected[i].count) channels")
        }
        // Both nodes' probe channels live on every instance.
        for i in 0..<2 {
            XCTAssertTrue(try nodes.channels(on: i, loop: inspector).isSuperset(of: ["node:node-a", "node:node-b"]))
        }
        for c in channels { nodes.brokerB.nodeInterestChanged(c, false) }
        for i in 0..<2 {
            XCTAssertTrue(try eventually { try nodes.channels(on: i, loop: inspector).filter { $0.hasPrefix("conv:") }.isEmpty },
                          "expected every channel unsubscribed from instance \(i)")
        }
    }

    func testAKilledSubscriberComesBackWithItsChannelsAndAsksForACatchUp() throws {
        let nodes = try TwoNodes()
        defer { nodes.stop() }
        let channel = "conv:support:comeback"
        let onB = try ChatClient(port: nodes.b.port, token: TestHub.token("reader-b", .admin))
        _ = try onB.result("subscribe", ["channel": .string(channel)])
        let shard = nodes.brokerB.ring.shard(for: channel)
        let inspector = try RunningLoop(index: 9)
        defer { inspector.stop() }
        XCTAssertTrue(try eventually { try nodes.channels(on: shard, loop: inspector).contains(channel) })
        let killer = try inspector.connect(nodes.endpoints[shard], name: "t-killer")
        defer { inspector.close(killer) }
        let name = "\(nodes.cluster):node-b-s\(shard)-sub"
        let list = try inspector.call(killer, ["CLIENT", "LIST"]).string ?? ""
        guard let id = list.split(separator: "\n").first(where: { $0.contains(" name=\(name) ") })?
            .split(separator: " ").first(where: { $0.hasPrefix("id=") })?.dropFirst(3) else {
            return XCTFail("expected a client named \(name) in CLIENT LIST")
        }
        XCTAssertEqual(try inspector.call(killer, ["CLIENT", "KILL", "ID", String(id)]), .integer(1))
        XCTAssertTrue(eventually { nodes.catchUps.withLock { $0 }.contains(channel) }, "expected a catch-up request for \(channel)")
        XCTAssertTrue(eventually { nodes.brokerB.status()[shard].up && nodes.brokerB.status()[shard].reconnects >= 1 })
        nodes.brokerA.publish(push(channel, 1))
        XCTAssertEqual(try onB.push("message")["seq"]?.intValue, 1, "expected delivery after the resubscribe")
    }

    func testMessagesTheInboundRingDropsAskForACatchUpOfTheirChannel() throws {
        var options = RedisBroker.Options()
        options.shard.inbound = InboundRing.Limits(maxMessages: 10, maxBytes: 1 << 20)
        let nodes = try TwoNodes(options: options)
        defer { nodes.stop() }
        let channel = "conv:support:flood"
        let onB = try ChatClient(port: nodes.b.port, token: TestHub.token("reader-b", .admin))
        _ = try onB.result("subscribe", ["channel": .string(channel)])
        let inspector = try RunningLoop(index: 9)
        defer { inspector.stop() }
        let shard = nodes.brokerB.ring.shard(for: channel)
        XCTAssertTrue(try eventually { try nodes.subscriberCount(channel, on: shard, loop: inspector) == 1 })
        nodes.catchUps.withLock { $0 = [] }
        for seq in Int64(1)...20_000 { nodes.brokerA.publish(push(channel, seq)) }
        XCTAssertTrue(eventually(10) { nodes.brokerB.status()[shard].dropped > 0 }, "expected a ring of 10 to drop under 20,000 publications")
        XCTAssertTrue(eventually { nodes.catchUps.withLock { $0 }.contains(channel) }, "expected a catch-up request for \(channel)")
        XCTAssertFalse(nodes.catchUps.withLock { $0 }.contains { $0.hasPrefix("node:") }, "a lost probe needs no catch-up")
    }

    func testAnOpenButSilentConnectionIsFoundWithinThreeSecondsAndReplaced() throws {
        let direct = try RedisTestEnv.endpoint()
        let proxy = try FaultProxy(to: direct.port)
        defer { proxy.stop() }
        var options = RedisBroker.Options()
        options.cluster = String(RedisTestEnv.prefix().dropLast())
        let a = try TestHub(loops: 1), b = try TestHub(loops: 1)
        let brokerA = RedisBroker(router: a.server.chat.router, loops: a.server.loops, endpoints: [direct], nodeID: "node-a", options: options)
        let brokerB = RedisBroker(router: b.server.chat.router, loops: b.server.loops,
                                  endpoints: [RedisEndpoint(host: "127.0.0.1", port: proxy.port)], nodeID: "node-b", options: options)
        let catchUps = Locked<[String]>([])
        brokerB.onCatchUpNeeded { channels in catchUps.withLock { $0 += channels } }
        brokerA.start()
        brokerB.start()
        defer { brokerA.stop(); brokerB.stop(); a.stop(); b.stop() }
        XCTAssertTrue(eventually { brokerA.status()[0].up && brokerB.status()[0].up })
        let channel = "conv:support:silent"
        let onB = try ChatClient(port: b.port, token: TestHub.token("reader-b", .admin))
        _ = try onB.result("subscribe", ["channel": .string(channel)])
        XCTAssertTrue(eventually { brokerB.status()[0].lastProbeMs != nil }, "expected a probe to come back before the fault")
        brokerA.publish(push(channel, 1))
        XCTAssertEqual(try onB.push("message")["seq"]?.intValue, 1)
        catchUps.withLock { $0 = [] }

        proxy.mode = .blackhole
        let silentSince = Date()
        XCTAssertTrue(eventually(5) { brokerB.status()[0].silentResets >= 1 }, "expected the probe to find the silent connection")
        let found = Date().timeIntervalSince(silentSince)
        XCTAssertLessThanOrEqual(found, 3.0, "expected the silence found within 3 s, took \(found) s")
        proxy.mode = .pass // the reconnect goes through a working route
        XCTAssertTrue(eventually { catchUps.withLock { $0 }.contains(channel) }, "expected a catch-up request after the resubscribe")
        XCTAssertTrue(eventually { brokerB.status()[0].up })
        brokerA.publish(push(channel, 2))
        XCTAssertEqual(try onB.push("message")["seq"]?.intValue, 2, "expected delivery over the new connection")
    }
}
