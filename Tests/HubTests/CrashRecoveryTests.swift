import CLinux
import Foundation
import Glibc
import Persistence
import Protocol
import XCTest

// The durability promise, tested the hard way: `send` replies `ok` only after the message is
// stored, so a hub killed with SIGKILL in the middle of steady sending must, once restarted
// on the same data folder, still hold every acknowledged message exactly once with the seq
// and client_msg_id it was acknowledged with, seqs gap-free from 1, and an intact database.
final class CrashRecoveryTests: XCTestCase {
    private static let senders = 4
    private static let window = 8 // sends in flight per sender, so the kill lands mid-commit
    private static let bridgeKey = "crash-test-bridge-key-0123456789"

    /// What the sender threads sent and had acknowledged. `@unchecked Sendable` because every
    /// field is read and written only under `lock`.
    private final class Ledger: @unchecked Sendable {
        private let lock = NSLock()
        private var _sent: [[String]] = Array(repeating: [], count: CrashRecoveryTests.senders)
        private var _acked: [[(seq: Int64, cmid: String)]] = Array(repeating: [], count: CrashRecoveryTests.senders)
        private var _errorsBeforeKill: [String] = []
        private var _killed = false

        func locked<T>(_ body: () -> T) -> T { lock.lock(); defer { lock.unlock() }; return body() }
        func sent(_ i: Int, _ cmid: String) { locked { _sent[i].append(cmid) } }
        func acked(_ i: Int, _ seq: Int64, _ cmid: String) { locked { _acked[i].append((seq, cmid)) } }
        /// An error reply or a failure; only those before the kill are the hub's fault.
        func failed(_ i: Int, _ why: String) { locked { if !_killed { _errorsBeforeKill.append("c\(i): \(why)") } } }
        func markKilled() { locked { _killed = true } }
        var killed: Bool { locked { _killed } }
        var sent: [[String]] { locked { _sent } }
        var acked: [[(seq: Int64, cmid: String)]] { locked { _acked } }
        var errorsBeforeKill: [String] { locked { _errorsBeforeKill } }
    }

    private func hubArguments(data: String) -> [String] {
        ["--host", "127.0.0.1", "--port", "0", "--bridge-port", "0", "--data", data,
         "--jwt-secret", TestHub.secret, "--bridge-key", Self.bridgeKey, "--loops", "2",
         "--ops-rate", "0"] // the senders push thousands of ops a second on purpose
    }

    private func start(data: String) throws -> (HubProcess, Int) {
        let hub = try HubProcess(hubArguments(data: data))
        guard let line = hub.waitForLine(containing: "public listening", timeout: 10), let port = HubProcess.port(in: line) else {
            throw TestError("hub did not start: \(hub.outputLines) \(hub.standardError)")
        }
        return (hub, port)
    }

    private static func channel(_ i: Int) -> String { "conv:website:c\(i)" }

    /// Starts every sender on its own thread; the group is left when they have all stopped.
    private static func startSenders(port: Int, ledger: Ledger, tag: String) -> DispatchGroup {
        let group = DispatchGroup()
        for i in 0..<senders {
            group.enter()
            Thread.detachNewThread {
                runSender(i, port: port, ledger: ledger, tag: tag)
                group.leave()
            }
        }
        return group
    }

    /// One sender: keeps `window` sends in flight until the connection fails (the kill).
    private static func runSender(_ i: Int, port: Int, ledger: Ledger, tag: String) {
        do {
            let client = try ChatClient(port: port, token: TestHub.token("c\(i)", .client))
            var inFlight: [Int64: String] = [:]
            var nextID: Int64 = 1000
            var n = 0
            while true {
                while inFlight.count < window {
                    let cmid = "\(tag)-c\(i)-\(n)"
                    let body: JSONObject = ["id": .int(nextID), "op": "send", "channel": .string(channel(i)),
                                            "text": .string("message \(n) from c\(i)"), "client_msg_id": .string(cmid)]
                    ledger.sent(i, cmid) // before it is written: a send that may have been stored
                    try client.ws.send(JSON.object(body).text)
                    inFlight[nextID] = cmid
                    nextID += 1
                    n += 1
                }
                let v = try client.next()
                guard let id = v["id"]?.intValue, let cmid = inFlight.removeValue(forKey: id) else { continue }
                if v["ok"]?.boolValue == true, let seq = v["result"]?["seq"]?.intValue {
                    if v["result"]?["duplicate"]?.boolValue == true { ledger.failed(i, "fresh \(cmid) acked as duplicate") }
                    ledger.acked(i, seq, cmid)
                } else {
                    ledger.failed(i, "send \(cmid) failed: \(v.text)")
                }
            }
        } catch {
            ledger.failed(i, "\(error)")
        }
    }

    func testAcknowledgedMessagesSurviveSIGKILL() throws {
        let data = TestDirectory.make("hub-crash")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (first, port) = try start(data: data)
        defer { if first.process.isRunning { first.signal(SIGKILL) } }

        // Steady sending from four client users, each into its own conversation.
        let ledger = Ledger()
        let group = Self.startSenders(port: port, ledger: ledger, tag: "crash")
        let warmDeadline = Date().addingTimeInterval(3)
        while ledger.acked.contains(where: \.isEmpty) && Date() < warmDeadline { usleep(10_000) }
        XCTAssertFalse(ledger.acked.contains(where: \.isEmpty), "every sender got an ack before the kill: \(ledger.errorsBeforeKill)")
        usleep(1_500_000)

        ledger.markKilled()
        first.signal(SIGKILL)
        XCTAssertEqual(group.wait(timeout: .now() + 5), .success, "senders stop once the hub is gone")
        _ = first.waitForExit(timeout: 5)
        XCTAssertEqual(ledger.errorsBeforeKill, [], "no send failed before the kill")

        let sent = ledger.sent
        let acked = ledger.acked
        let totalAcked = acked.reduce(0) { $0 + $1.count }
        XCTAssertGreaterThan(totalAcked, 100, "enough traffic to make the test meaningful")

        // Same data folder, fresh process.
        let (second, port2) = try start(data: data)
        defer { if second.process.isRunning { second.signal(SIGKILL) } }

        var totalStored: Int64 = 0
        for i in 0..<Self.senders {
            let stored = try fetchAll(i, port: port2)
            let seqs = stored.map(\.seq)
            XCTAssertEqual(seqs, (0..<seqs.count).map { Int64($0) + 1 }, "c\(i): seqs are 1…N with no gap and no duplicate")
            var bySeq: [Int64: String] = [:]
            var seenCmids: [String: Int] = [:]
            for m in stored {
                bySeq[m.seq] = m.cmid
                seenCmids[m.cmid, default: 0] += 1
                XCTAssertEqual(m.from, "c\(i)", "c\(i): seq \(m.seq) is from its sender")
            }
            XCTAssertEqual(seenCmids.filter { $0.value > 1 }.keys.sorted(), [], "c\(i): no client_msg_id stored twice")
            let sentSet = Set(sent[i])
            XCTAssertEqual(Set(seenCmids.keys).subtracting(sentSet).sorted(), [], "c\(i): nothing stored that was never sent")
            var missing: [String] = []
            for a in acked[i] where bySeq[a.seq] != a.cmid {
                missing.append("\(a.cmid)@\(a.seq) (stored there: \(bySeq[a.seq] ?? "nothing"))")
            }
            XCTAssertEqual(missing, [], "c\(i): every acknowledged message survives with its seq (\(acked[i].count) acked, \(stored.count) stored)")
            XCTAssertGreaterThanOrEqual(stored.count, acked[i].count)
            XCTAssertLessThanOrEqual(stored.count, sent[i].count)
            totalStored += Int64(stored.count)

            totalStored += try retryAfterRestart(i, port: port2, stored: stored, sent: sent[i], acked: acked[i])
        }

        second.signal(SIGTERM)
        XCTAssertEqual(second.waitForExit(timeout: 5), 0, "the restarted hub stops cleanly")
        let db = try SQLiteConnection(path: (data as NSString).appendingPathComponent("hub.sqlite"), readOnly: true)
        XCTAssertEqual(try db.scalarText("PRAGMA integrity_check"), "ok")
        // What survived the kill plus what the retries stored after the restart; nothing else.
        // (The senders' conversations only: a development-mode hub also seeds its demo conversations.)
        let count = "SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.client_id GLOB 'c[0-9]*'"
        XCTAssertEqual(Int64(try db.scalarText(count) ?? "") ?? -1, totalStored)
    }

    private struct Stored { var seq: Int64; var cmid: String; var from: String }

    private func stored(_ m: JSON) -> Stored {
        Stored(seq: m["seq"]?.intValue ?? -1, cmid: m["client_msg_id"]?.stringValue ?? "", from: m["from"]?["id"]?.stringValue ?? "")
    }

    /// Everything in conversation c<i>, two ways that must agree: `subscribe` since 0 (one
    /// page, then the rest as pushes) and `history` paged backwards with `before`.
    private func fetchAll(_ i: Int, port: Int) throws -> [Stored] {
        let c = try ChatClient(port: port, token: TestHub.token("c\(i)", .client))
        let sub = try c.result("subscribe", ["channel": .string(Self.channel(i)), "since": 0])
        let lastSeq = sub["last_seq"]?.intValue ?? -1
        var viaSubscribe = (sub["messages"]?.arrayValue ?? []).map(stored)

        var viaHistory: [Stored] = []
        var before: Int64?
        for _ in 0..<10_000 {
            var params: JSONObject = ["channel": .string(Self.channel(i)), "limit": 100]
            if let before { params["before"] = .int(before) }
            let page = try c.result("history", params)
            let messages = (page["messages"]?.arrayValue ?? []).map(stored)
            viaHistory.insert(contentsOf: messages, at: 0)
            guard page["more"]?.boolValue == true, let firstSeq = messages.first?.seq else { break }
            before = firstSeq
        }

        // The catch-up pushes after the first page (queued by the client while history ran).
        let deadline = Date().addingTimeInterval(5)
        while Int64(viaSubscribe.count) < lastSeq && Date() < deadline {
            let p = try c.push("message")
            guard p["channel"]?.stringValue == Self.channel(i) else { continue }
            viaSubscribe.append(stored(p))
        }
        XCTAssertEqual(Int64(viaHistory.count), lastSeq, "c\(i): history holds last_seq messages")
        XCTAssertEqual(viaSubscribe.map(\.seq), viaHistory.map(\.seq), "c\(i): subscribe since 0 and history agree on seqs")
        XCTAssertEqual(viaSubscribe.map(\.cmid), viaHistory.map(\.cmid), "c\(i): subscribe since 0 and history agree on client_msg_ids")
        try c.ws.close()
        return viaHistory
    }

    /// What a client does after reconnecting: retries its unacknowledged sends. A send that
    /// was stored before the kill is answered as a duplicate with its stored seq; one that was
    /// not is stored now, continuing the conversation's seq with no gap. A retry of an
    /// acknowledged send is a duplicate of it. Returns how many messages the retries stored.
    private func retryAfterRestart(_ i: Int, port: Int, stored: [Stored], sent: [String],
                                   acked: [(seq: Int64, cmid: String)]) throws -> Int64 {
        let c = try ChatClient(port: port, token: TestHub.token("c\(i)", .client))
        let seqOf = Dictionary(stored.map { ($0.cmid, $0.seq) }, uniquingKeysWith: { a, _ in a })
        let ackedSet = Set(acked.map(\.cmid))
        var next = Int64(stored.count) + 1
        for cmid in sent where !ackedSet.contains(cmid) {
            let r = try c.result("send", ["channel": .string(Self.channel(i)), "text": "retry", "client_msg_id": .string(cmid)])
            if let seq = seqOf[cmid] {
                XCTAssertEqual(r["duplicate"]?.boolValue, true, "c\(i): \(cmid) was stored before the kill: a retry is a duplicate")
                XCTAssertEqual(r["seq"]?.intValue, seq)
            } else {
                XCTAssertEqual(r["duplicate"]?.boolValue, false, "c\(i): \(cmid) was lost unacknowledged: a retry stores it")
                XCTAssertEqual(r["seq"]?.intValue, next, "c\(i): seqs continue after the restart with no gap")
                next += 1
            }
        }
        if let last = acked.last {
            let r = try c.result("send", ["channel": .string(Self.channel(i)), "text": "retry", "client_msg_id": .string(last.cmid)])
            XCTAssertEqual(r["duplicate"]?.boolValue, true, "c\(i): retrying an acknowledged send changes nothing")
            XCTAssertEqual(r["seq"]?.intValue, last.seq)
        }
        try c.ws.close()
        return next - Int64(stored.count) - 1
    }

    /// Ten SIGKILL-and-restart cycles under steady sends on the same data folder: every
    /// acknowledged message is there exactly once at the end, seqs have no gap, and the file
    /// passes SQLite's integrity check.
    func testTenKillAndRestartCyclesLoseNothingAcknowledged() throws {
        let data = TestDirectory.make("hub-cycles")
        defer { try? FileManager.default.removeItem(atPath: data) }
        var acked: [[String]] = Array(repeating: [], count: Self.senders)
        var sent: [Set<String>] = Array(repeating: [], count: Self.senders)
        for cycle in 0..<10 {
            let (hub, port) = try start(data: data)
            defer { if hub.process.isRunning { hub.signal(SIGKILL) } }
            let ledger = Ledger()
            let group = Self.startSenders(port: port, ledger: ledger, tag: "cycle\(cycle)")
            usleep(400_000)
            ledger.markKilled()
            hub.signal(SIGKILL)
            XCTAssertEqual(group.wait(timeout: .now() + 5), .success)
            _ = hub.waitForExit(timeout: 5)
            XCTAssertEqual(ledger.errorsBeforeKill, [], "cycle \(cycle): no send failed before the kill")
            for i in 0..<Self.senders {
                acked[i] += ledger.acked[i].map(\.cmid)
                sent[i].formUnion(ledger.sent[i])
            }
        }
        let (last, port) = try start(data: data)
        var total = 0
        for i in 0..<Self.senders {
            let stored = try fetchAll(i, port: port)
            XCTAssertEqual(stored.map(\.seq), (0..<stored.count).map { Int64($0) + 1 }, "c\(i): seqs 1…N, no gap")
            let cmids = stored.map(\.cmid)
            XCTAssertEqual(Set(cmids).count, cmids.count, "c\(i): no message stored twice")
            XCTAssertEqual(Set(acked[i]).subtracting(cmids).sorted(), [], "c\(i): every acknowledged message is there")
            XCTAssertEqual(Set(cmids).subtracting(sent[i]).sorted(), [], "c\(i): nothing that was never sent")
            total += acked[i].count
        }
        XCTAssertGreaterThan(total, 1_000, "enough acknowledged traffic across the ten cycles")
        last.signal(SIGTERM)
        XCTAssertEqual(last.waitForExit(timeout: 5), 0)
        let db = try SQLiteConnection(path: (data as NSString).appendingPathComponent("hub.sqlite"), readOnly: true)
        XCTAssertEqual(try db.scalarText("PRAGMA integrity_check"), "ok")
        print("kill cycles: 10 SIGKILLs, \(total) acknowledged sends, all present once, integrity ok")
    }

    /// SIGTERM with 5,000 connected clients while four of them keep sending: every client gets
    /// a 1001 close, the process exits 0, and everything acknowledged is there after a restart.
    func testSIGTERMClosesFiveThousandClientsWith1001AndLosesNothing() throws {
        _ = montrose_raise_open_file_limit()
        let data = TestDirectory.make("hub-term")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (hub, port) = try start(data: data)
        defer { if hub.process.isRunning { hub.signal(SIGKILL) } }
        var crowd: [ChatClient] = []
        for i in 0..<5_000 { crowd.append(try ChatClient(port: port, token: TestHub.token("u\(i)", .client))) }
        let ledger = Ledger()
        let group = Self.startSenders(port: port, ledger: ledger, tag: "term")
        usleep(500_000)
        ledger.markKilled()
        let t0 = Date()
        hub.signal(SIGTERM)
        XCTAssertEqual(hub.waitForExit(timeout: 10), 0, "exit code 0")
        let exitMs = Int(Date().timeIntervalSince(t0) * 1000)
        XCTAssertEqual(group.wait(timeout: .now() + 5), .success)
        var codes: [UInt16: Int] = [:]
        for c in crowd { codes[(try? c.ws.readClose().closeCode) ?? 0, default: 0] += 1 }
        XCTAssertEqual(codes, [1001: 5_000], "every client got 1001")
        // Closed before the next start: Foundation's Process.run walks every open descriptor
        // (and under AddressSanitizer overflows a buffer doing it when there are thousands).
        crowd.removeAll()
        XCTAssertEqual(ledger.errorsBeforeKill, [])
        let (again, port2) = try start(data: data)
        defer { if again.process.isRunning { again.signal(SIGKILL) } }
        var total = 0
        for i in 0..<Self.senders {
            let cmids = Set(try fetchAll(i, port: port2).map(\.cmid))
            XCTAssertEqual(Set(ledger.acked[i].map(\.cmid)).subtracting(cmids).sorted(), [], "c\(i): every acknowledged send survived")
            total += ledger.acked[i].count
        }
        again.signal(SIGTERM)
        _ = again.waitForExit(timeout: 5)
        print("sigterm: 5000 clients closed 1001, exit 0 after \(exitMs) ms, \(total) acknowledged sends all present")
    }
}
