import Foundation
import Glibc
import XCTest
import Core
import Protocol
@testable import Hub
@testable import Persistence

// More faults with real node processes, each between a node and one engine or on a node
// itself: a node's Redis connection made silent (a fault proxy of the test's own), a node
// stopped while Redis's pub/sub output limit cuts its subscriber, a node's PostgreSQL
// connection reset, and three nodes writing one conversation while one is killed. Every test
// checks that nothing acknowledged is lost, duplicated or out of order at any client, and
// prints its counts and times.
final class ClusterFaultTests2: XCTestCase {
    private var cluster: ClusterProcesses!
    /// Run after the nodes are killed (proxies, private Redis servers).
    private var cleanups: [() -> Void] = []
    private let channel = "conv:website:ann"
    /// Flags for a node that floods: the per-connection op rate must not slow the test down.
    private let floodFlags = ["--ops-rate", "100000", "--ops-burst", "100000"]

    override func setUpWithError() throws {
        cluster = try ClusterProcesses()
        _ = try TestTopology.redis()
    }

    override func tearDown() {
        cluster?.tearDown()
        for c in cleanups.reversed() { c() }
        cleanups = []
    }

    // MARK: helpers

    /// ann (a client of `website`) and wes (her agent), through a node's bridge.
    private func seedUsers(bridge port: Int) throws {
        let bridge = BridgeClient(port: port)
        try bridge.user("ann", "client")
        try bridge.user("wes", "website_agent")
        let assigned = try bridge.put("/v1/assignments/website/ann", #"{"agent_id":"wes"}"#)
        XCTAssertEqual(assigned.status, 200, assigned.text)
    }

    /// A subscribed client of `channel` whose pushes a thread of its own reads. An assignment
    /// made through another node reaches this one over Redis a moment later: until then
    /// `subscribe` is forbidden, and asked again.
    private func reader(_ name: String, port: Int, user: String, _ role: Role) throws -> MessageReader {
        let c = try ChatClient(port: port, token: TestHub.token(user, role))
        let deadline = Date().addingTimeInterval(10)
        while true {
            let r = try c.request("subscribe", ["channel": .string(channel)])
            if r["ok"]?.boolValue == true { break }
            guard r["error"]?["code"]?.stringValue == "forbidden", Date() < deadline else { throw TestError("\(name): subscribe failed: \(r.text)") }
            usleep(20_000)
        }
        return MessageReader(name, c)
    }

    /// A client that only sends (subscribed to nothing).
    private func sender(port: Int, user: String, _ role: Role) throws -> ChatClient {
        try ChatClient(port: port, token: TestHub.token(user, role))
    }

    /// Sends `ids` pipelined and records the acks (id → seq); a send answered with an error fails the test.
    private func flood(_ c: ChatClient, _ ids: [String], into acked: inout [String: Int64], text: (String) -> String = { $0 }) throws {
        var replies: [String: JSON] = [:]
        try c.sendPipelined(channel, ids, replies: &replies, text: text)
        for id in ids {
            guard let seq = replies[id]?["result"]?["seq"]?.intValue, replies[id]?["ok"]?.boolValue == true else {
                return XCTFail("expected \(id) acknowledged, got \(replies[id]?.text ?? "no reply")")
            }
            acked[id] = seq
        }
    }

    /// Every reader got exactly 1…last, in order, once, and each seq is the message the store
    /// acknowledged for it; prints the counts.
    private func assertEveryoneGotEverything(_ readers: [MessageReader], acked: [String: Int64], last: Int64,
                                             file: StaticString = #filePath, line: UInt = #line) {
        let expected = Array(1...last)
        var bySeq: [Int64: String] = [:]
        for (id, seq) in acked { bySeq[seq] = id }
        XCTAssertEqual(Set(acked.values).count, acked.count, "every ack a distinct seq", file: file, line: line)
        var gaps = 0, dups = 0
        for r in readers {
            XCTAssertTrue(r.wait(through: last, seconds: 45), "\(r.name): expected seq \(last), got to \(r.last) (ended: \(r.ended ?? "no"))",
                          file: file, line: line)
            let audit = MessageReader.audit(r.seqs)
            gaps += audit.gaps + Int(last - min(last, r.seqs.max() ?? 0))
            dups += audit.dups
            XCTAssertTrue(r.seqs == expected, "\(r.name): expected 1…\(last) in order, once; got \(r.seqs.count) "
                          + "(gaps \(audit.gaps), dups \(audit.dups), out of order \(audit.disorder), first \(r.seqs.prefix(5)), last \(r.seqs.suffix(5)))",
                          file: file, line: line)
            let ids = r.ids
            for (seq, id) in bySeq where ids[seq] != id {
                XCTFail("\(r.name): seq \(seq) should be \(id), got \(ids[seq] ?? "nothing")", file: file, line: line)
                break
            }
        }
        print("cluster fault: acked \(acked.count), delivered \(last) × \(readers.count) clients, \(gaps) gaps, \(dups) dups")
    }

    private func seconds(_ t: TimeInterval) -> String { String(format: "%.2f s", t) }

    // MARK: 1. a silent Redis connection

    func testANodesSilentRedisConnectionIsFoundReplacedAndItsClientsMissNothing() throws {
        let redis = try RedisEndpoint(url: ClusterProcesses.environmentBrokers[0])
        let proxy = try FaultProxy(to: redis.port)
        cleanups.append { proxy.stop() }
        let a = try cluster.start("a", brokers: [ClusterProcesses.environmentBrokers[0]], extra: floodFlags)
        let b = try cluster.start("b", brokers: ["redis://127.0.0.1:\(proxy.port)"])
        try seedUsers(bridge: a.bridge)
        let ann = try sender(port: a.port, user: "ann", .client)
        let wesSender = try sender(port: b.port, user: "wes", .websiteAgent)
        let readers = [try reader("wes on b", port: b.port, user: "wes", .websiteAgent),
                       try reader("root on b", port: b.port, user: "root", .admin),
                       try reader("root on a", port: a.port, user: "root", .admin)]
        defer { readers.forEach { $0.stop() } }

        var acked: [String: Int64] = [:]
        try flood(ann, (0..<20).map { "w\($0)" }, into: &acked)
        XCTAssertTrue(readers.allSatisfy { $0.wait(through: 20) }, "expected the cluster to work before the fault")

        // A slow route first (300 ms each way): late, but nothing reset and nothing out of order.
        proxy.mode = .delay(ms: 300)
        try flood(ann, (0..<50).map { "d\($0)" }, into: &acked)
        let lastDelayed = acked.values.max() ?? 0
        XCTAssertTrue(readers.allSatisfy { $0.wait(through: lastDelayed) }, "expected b's clients served through a slow route")
        proxy.mode = .pass

        // Flood from a; b's route to Redis goes silent (nothing lost in flight: it waits).
        proxy.mode = .blackhole
        let silentAt = Date(), silentWall = wallMillis()
        var found: TimeInterval?
        var batch = 0
        while found == nil && Date().timeIntervalSince(silentAt) < 10 {
            try flood(ann, (0..<10).map { "f\(batch)-\($0)" }, into: &acked)
            if batch % 5 == 0 { try flood(wesSender, ["wes\(batch)"], into: &acked) } // b's own publishes wait too
            batch += 1
            if let first = proxy.accepted(since: silentAt).first { found = first.timeIntervalSince(silentAt) }
        }
        let detected = try XCTUnwrap(found, "expected node b to reconnect (its probe finding the silence) within 10 s")
        XCTAssertLessThanOrEqual(detected, 4.0, "expected the silence found within ~3 s")
        // The route is back: the new connection's handshake (waiting in the proxy) goes through.
        proxy.mode = .pass
        let passAt = Date()
        let lastBeforePass = acked.values.max() ?? 0
        XCTAssertTrue(readers.allSatisfy { $0.wait(through: lastBeforePass) }, "expected b's clients caught up after the reconnect")
        let recovered = Date().timeIntervalSince(passAt)
        for i in 0..<100 { try flood(ann, ["g\(i)"], into: &acked) }
        try flood(wesSender, ["wes-after"], into: &acked)
        let last = acked.values.max() ?? 0
        XCTAssertEqual(acked.values.sorted(), Array(1...last), "every ack a distinct seq, no hole")
        assertEveryoneGotEverything(readers, acked: acked, last: last)

        b.process.signal(SIGKILL)
        let log = b.process.standardError.split(separator: "\n").filter { $0.contains("event=redis_probe_silent") }
        XCTAssertFalse(log.isEmpty, "expected node b to log redis_probe_silent")
        let loggedAt = log.first.flatMap { $0.split(separator: " ").first?.dropFirst(3) }.flatMap { Int64($0) }
        print("cluster fault: silent Redis connection found after \(seconds(detected)) (node b reconnected through the proxy)"
              + (loggedAt.map { "; probe log \(seconds(Double($0 - silentWall) / 1000)) after the silence" } ?? "")
              + "; b's clients caught up \(seconds(recovered)) after the route came back")
    }

    // MARK: 2. a stopped node cut off by Redis's pub/sub output limit

    func testANodeStoppedTenSecondsAndCutOffByRedisCatchesUpInOrderAndOnce() throws {
        let redis = try PrivateRedis()
        cleanups.append { redis.stop() }
        let inspector = try RunningLoop(index: 9)
        cleanups.append { inspector.stop() }
        let admin = try inspector.connect(try RedisEndpoint(url: redis.url), name: "t-inspect")
        XCTAssertEqual(try inspector.call(admin, ["CONFIG", "SET", "client-output-buffer-limit", "pubsub 256kb 128kb 1"]),
                       .simpleString("OK"))
        let a = try cluster.start("a", brokers: [redis.url], extra: floodFlags)
        let b = try cluster.start("b", brokers: [redis.url])
        try seedUsers(bridge: a.bridge)
        let ann = try sender(port: a.port, user: "ann", .client)
        let readers = [try reader("wes on b", port: b.port, user: "wes", .websiteAgent),
                       try reader("root on b", port: b.port, user: "root", .admin),
                       try reader("root on a", port: a.port, user: "root", .admin)]
        defer { readers.forEach { $0.stop() } }
        var acked: [String: Int64] = [:]
        try flood(ann, (0..<10).map { "w\($0)" }, into: &acked)
        XCTAssertTrue(readers.allSatisfy { $0.wait(through: 10) }, "expected the cluster to work before the fault")

        let subscriberName = "\(cluster.database.name):b-s0-sub"
        func subscriberConnected() throws -> Bool {
            (try inspector.call(admin, ["CLIENT", "LIST"]).string ?? "").contains(" name=\(subscriberName) ")
        }
        XCTAssertTrue(try subscriberConnected(), "expected \(subscriberName) in CLIENT LIST")

        // b stops for 10 s while a floods 4 KB messages: Redis's output buffer for b's subscriber
        // passes the limit and Redis closes it.
        b.process.signal(SIGSTOP)
        let stoppedAt = Date()
        var cutAfter: TimeInterval?
        let text = { (id: String) in id + " " + String(repeating: "x", count: 4_000) }
        var batch = 0, sinceCut = 0
        while Date().timeIntervalSince(stoppedAt) < 10 {
            if sinceCut < 400 {
                try flood(ann, (0..<20).map { "f\(batch)-\($0)" }, into: &acked, text: text)
                batch += 1
                if cutAfter == nil, try !subscriberConnected() { cutAfter = Date().timeIntervalSince(stoppedAt) }
                if cutAfter != nil { sinceCut += 20 }
            } else {
                usleep(50_000) // enough was sent after the cut; the stop lasts its 10 s
            }
        }
        b.process.signal(SIGCONT)
        let continuedAt = Date()
        let flooded = acked.count - 10
        let cut = try XCTUnwrap(cutAfter, "expected Redis to close the stopped node's subscriber (\(flooded) messages of 4 KB sent)")
        let lastBeforeContinue = acked.values.max() ?? 0
        XCTAssertTrue(readers.allSatisfy { $0.wait(through: lastBeforeContinue, seconds: 45) }, "expected b's clients caught up")
        let caughtUp = Date().timeIntervalSince(continuedAt)
        XCTAssertTrue(eventually(10) { (try? subscriberConnected()) == true }, "expected b subscribed again")
        try flood(ann, ["after"], into: &acked) // live again
        let last = acked.values.max() ?? 0
        XCTAssertEqual(acked.values.sorted(), Array(1...last), "every ack a distinct seq, no hole")
        assertEveryoneGotEverything(readers, acked: acked, last: last)
        print("cluster fault: Redis cut the stopped node's subscriber \(seconds(cut)) into the stop (\(flooded) messages of 4 KB during 10 s); "
              + "its clients had all \(lastBeforeContinue) \(seconds(caughtUp)) after SIGCONT")
    }

    // MARK: 3. PostgreSQL cut under a node

    func testSendsDuringAPostgreSQLCutAreRefusedAndTheirRetriesAreStoredOnce() throws {
        let pgPort = try XCTUnwrap(cluster.postgresPort)
        let proxy = try FaultProxy(to: pgPort)
        cleanups.append { proxy.stop() }
        let b = try cluster.start("b")
        let a = try cluster.start("a", store: try cluster.storeURL(throughPort: proxy.port))
        try seedUsers(bridge: b.bridge)
        let ann = try sender(port: a.port, user: "ann", .client)
        let wesSender = try sender(port: b.port, user: "wes", .websiteAgent)
        let readers = [try reader("root on a", port: a.port, user: "root", .admin),
                       try reader("wes on b", port: b.port, user: "wes", .websiteAgent),
                       try reader("root on b", port: b.port, user: "root", .admin)]
        defer { readers.forEach { $0.stop() } }

        var acked: [String: Int64] = [:]
        let before = (0..<20).map { "p\($0)" }
        for id in before { try flood(ann, [id], into: &acked) }

        // a's connections to PostgreSQL are reset, and every new one too.
        proxy.mode = .reset
        let cutAt = Date()
        let during = (0..<15).map { "c\($0)" }
        var refusals: [String: Int] = [:]
        for id in during {
            let r = try ann.sendMessage(channel, id)
            XCTAssertNotEqual(r["ok"]?.boolValue, true, "a send while PostgreSQL is cut must never be acknowledged: \(r.text)")
            let code = r["error"]?["code"]?.stringValue ?? "none"
            XCTAssertTrue(["unavailable", "internal"].contains(code), "expected unavailable or internal, got \(r.text)")
            refusals[code, default: 0] += 1
        }
        let refusedIn = Date().timeIntervalSince(cutAt) / Double(during.count)
        // The other node writes on meanwhile; a's subscriber hears it over Redis.
        for i in 0..<10 { try flood(wesSender, ["wes\(i)"], into: &acked) }

        proxy.mode = .pass
        let healedAt = Date()
        var errorsAfterHeal = 0, duplicates = 0, cutButStored = 0
        for id in before + during {
            var stored: JSON?
            while stored == nil && Date().timeIntervalSince(healedAt) < 20 {
                let r = try ann.sendMessage(channel, id)
                if r["ok"]?.boolValue == true { stored = r["result"] } else { errorsAfterHeal += 1; usleep(100_000) }
            }
            let result = try XCTUnwrap(stored, "expected \(id) stored after the heal")
            let seq = try XCTUnwrap(result["seq"]?.intValue)
            if result["duplicate"]?.boolValue == true { duplicates += 1 }
            if let first = acked[id] {
                XCTAssertEqual(result["duplicate"]?.boolValue, true, "\(id) was acknowledged before: its retry is a duplicate")
                XCTAssertEqual(seq, first, "\(id): a duplicate answers the first seq")
            } else {
                if result["duplicate"]?.boolValue == true { cutButStored += 1 } // committed as its connection was reset
                acked[id] = seq
            }
        }
        let healed = Date().timeIntervalSince(healedAt)
        let last = acked.values.max() ?? 0
        XCTAssertEqual(acked.count, 45)
        XCTAssertEqual(acked.values.sorted(), Array(1...last), "every ack a distinct seq, no hole")

        // The store itself: each client_msg_id once, seqs 1…last.
        let db = try PGConnection(url: cluster.database.url)
        defer { db.close() }
        let rows = try db.query("""
            SELECT m.seq, m.client_msg_id FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE c.service = 'website' AND c.client_id = 'ann' ORDER BY m.seq
            """)
        XCTAssertEqual((0..<rows.count).map { rows.int($0, 0) }, Array(1...last), "the store holds 1…\(last), no hole")
        XCTAssertEqual(Set((0..<rows.count).map { rows.text($0, 1) }), Set(acked.keys), "each client_msg_id stored exactly once")
        assertEveryoneGotEverything(readers, acked: acked, last: last)
        print("cluster fault: PostgreSQL cut: \(during.count) sends refused (\(refusals.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", ")), "
              + "\(String(format: "%.0f", refusedIn * 1000)) ms each), never acked; \(before.count + during.count) retries after the heal in \(seconds(healed)) "
              + "(\(errorsAfterHeal) refused while reconnecting, \(duplicates) duplicates, \(cutButStored) of them refused sends that had committed)")
    }

    // MARK: 4. three nodes, one killed

    func testThreeNodesWritingOneConversationWhileOneIsKilledLeaveNoHoleAndNoDuplicate() throws {
        let nodes = [try cluster.start("a"), try cluster.start("b"), try cluster.start("c")]
        try seedUsers(bridge: nodes[0].bridge)
        let victim = nodes[2]
        // Two readers per node (those on the victim move to a when it dies).
        var readers: [String: MessageReader] = [:]
        for n in nodes {
            readers["wes on \(n.id)"] = try reader("wes on \(n.id)", port: n.port, user: "wes", .websiteAgent)
            readers["root on \(n.id)"] = try reader("root on \(n.id)", port: n.port, user: "root", .admin)
        }
        defer { readers.values.forEach { $0.stop() } }

        // Two senders per node (ann and wes), 150 messages each in pipelined batches of 6.
        let perSender = 150
        let acked = Locked<[String: Int64]>([:])
        let problems = Locked<[String]>([])
        let retried = Locked(0)
        let senders = DispatchGroup()
        for n in nodes {
            for (user, role) in [("ann", Role.client), ("wes", Role.websiteAgent)] {
                let ids = (0..<perSender).map { "\(n.id)-\(user)-\($0)" }
                let port = n.port, fallback = nodes[0].port, channel = self.channel
                senders.enter()
                Thread {
                    defer { senders.leave() }
                    do {
                        var client = try ChatClient(port: port, token: TestHub.token(user, role))
                        var moved = false
                        for start in stride(from: 0, to: ids.count, by: 6) {
                            let batch = Array(ids[start..<min(start + 6, ids.count)])
                            var replies: [String: JSON] = [:]
                            do {
                                try client.sendPipelined(channel, batch, replies: &replies, window: 6)
                            } catch {
                                guard !moved else { throw error }
                                // The node died: the unanswered sends go again, on another node.
                                moved = true
                                client = try ChatClient(port: fallback, token: TestHub.token(user, role))
                                let unanswered = batch.filter { replies[$0] == nil }
                                retried.withLock { $0 += unanswered.count }
                                try client.sendPipelined(channel, unanswered, replies: &replies, window: 6)
                            }
                            for id in batch {
                                guard replies[id]?["ok"]?.boolValue == true, let seq = replies[id]?["result"]?["seq"]?.intValue else {
                                    problems.withLock { $0.append("\(id): \(replies[id]?.text ?? "no reply")") }
                                    continue
                                }
                                acked.withLock { $0[id] = seq }
                            }
                        }
                    } catch {
                        problems.withLock { $0.append("\(user) on \(port): \(error)") }
                    }
                }.start()
            }
        }
        // Node c dies a third of the way in, with sends in flight.
        let total = nodes.count * 2 * perSender
        XCTAssertTrue(eventually(30) { acked.withLock { $0.count } >= total / 3 }, "expected a third of the sends acknowledged")
        victim.process.signal(SIGKILL)
        let killedAt = Date(), ackedAtKill = acked.withLock { $0.count }
        XCTAssertNotNil(victim.process.waitForExit(timeout: 5))

        // Its readers reconnect to a and go on from where they were, with since.
        for name in ["wes on c", "root on c"] {
            guard let old = readers[name] else { continue }
            XCTAssertTrue(eventually(10) { old.ended != nil }, "\(name): expected the connection to end with the node")
            old.stop()
            let (user, role): (String, Role) = name.hasPrefix("wes") ? ("wes", .websiteAgent) : ("root", .admin)
            let c = try ChatClient(port: nodes[0].port, token: TestHub.token(user, role))
            let sub = try c.result("subscribe", ["channel": .string(channel), "since": .int(old.last)])
            let caughtUp = (sub["messages"]?.arrayValue ?? []).map { ($0["seq"]?.intValue ?? -1, $0["client_msg_id"]?.stringValue ?? "") }
            readers[name] = MessageReader(name, c, before: old, catchUp: caughtUp)
        }
        XCTAssertEqual(senders.wait(timeout: .now() + 60), .success, "expected every sender done within 60 s")
        XCTAssertEqual(problems.withLock { $0 }, [], "expected every send acknowledged, on its node or after the move")
        let all = acked.withLock { $0 }
        XCTAssertEqual(all.count, total, "every client_msg_id acknowledged")
        XCTAssertEqual(all.values.sorted(), Array(1...Int64(total)), "seqs 1…\(total): no hole, no duplicate")
        let live = readers.keys.sorted().compactMap { readers[$0] }
        assertEveryoneGotEverything(live, acked: all, last: Int64(total))
        print("cluster fault: three nodes, one killed after \(ackedAtKill) of \(total) acks; \(retried.withLock { $0 }) unanswered sends "
              + "retried on another node; every client had all \(total) \(seconds(Date().timeIntervalSince(killedAt))) after the kill")
    }
}
