import Foundation
import Synchronization
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// What only the PostgreSQL store has to show: several nodes (stores) writing one conversation,
// racing one client_msg_id, starting together; unread counts with several writers; deadlocks
// retried; connections killed mid-run and while idle. (Completion order with its two writers
// is checked in the contract.)
final class PostgresStoreTests: XCTestCase {
    var schema: TestPGSchema!
    let ann = UserRecord(id: "ann", role: "client", name: "Ann")
    let key = ConversationKey(service: "website", clientId: "ann")

    override func setUpWithError() throws { schema = try TestPGSchema() }
    override func tearDown() { schema?.drop() }

    private func open(writers: Int = 2, readers: Int = 2) throws -> PostgresStore {
        try PostgresStore(url: schema.url, writers: writers, readers: readers, now: 1, messageWording: MessageNotificationText.wording)
    }

    private func wait<T: Sendable>(_ call: (@escaping StoreCompletion<T>) -> Void) throws -> T {
        try waitResult(call).get()
    }

    private func waitResult<T: Sendable>(_ call: (@escaping StoreCompletion<T>) -> Void) throws -> Result<T, StoreError> {
        let box = Locked<Result<T, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        call { r in box.withLock { $0 = r }; done.signal() }
        guard done.wait(timeout: .now() + 30) == .success, let r = box.withLock({ $0 }) else {
            throw StoreError.unavailable("timed out")
        }
        return r
    }

    private func scalar(_ sql: String, _ params: [String?] = []) throws -> Int64 {
        let db = try schema.connect()
        defer { db.close() }
        return try db.query(sql, params).int(0, 0)
    }

    func testThreeNodesAppendingToOneConversationTakeEverySeqExactlyOnce() throws {
        let nodes = try (0..<3).map { _ in try open(writers: 1, readers: 1) }
        defer { nodes.forEach { $0.close() } }
        let seqs = Locked<[Int64]>([])
        let failures = Locked<[StoreError]>([])
        let group = DispatchGroup()
        for (n, node) in nodes.enumerated() {
            for i in 0..<300 {
                group.enter()
                let sender = UserRecord(id: "u\(n)-\(i % 7)", role: "client", name: "U")
                node.appendMessage(NewMessage(conversation: key, sender: sender, text: "m\(i)", clientMsgId: "n\(n)-\(i)", ts: 1)) { r in
                    switch r {
                    case .success(let a): seqs.withLock { $0.append(a.message.seq) }
                    case .failure(let e): failures.withLock { $0.append(e) }
                    }
                    group.leave()
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        XCTAssertEqual(failures.withLock { $0 }, [])
        XCTAssertEqual(seqs.withLock { $0.sorted() }, Array(1...900), "900 acknowledged sends from 3 nodes take seqs 1…900 exactly once")
        XCTAssertEqual(try scalar("SELECT count(DISTINCT seq) FROM messages WHERE seq BETWEEN 1 AND 900"), 900)
        XCTAssertEqual(try scalar("SELECT last_seq FROM conversations"), 900)
        XCTAssertEqual(try wait { nodes[0].storedTotals(completion: $0) }.messages, 900, "the striped totals add up")
        XCTAssertEqual(try scalar("SELECT count(*) FROM totals WHERE messages > 0"), 3, "each node's writer added to a stripe of its own")
    }

    func testTwoNodesRacingOneClientMsgIdStoreOneRowAndAnswerAlike() throws {
        let a = try open(writers: 2, readers: 1)
        let b = try open(writers: 2, readers: 1)
        defer { a.close(); b.close() }
        let elsewhere = ConversationKey(service: "marketing", clientId: "ann")
        for round in 0..<40 {
            let answers = Locked<[Result<AppendResult, StoreError>]>([])
            let group = DispatchGroup()
            // Even rounds race in one conversation, odd ones in two (the unique index decides).
            let keys = round % 2 == 0 ? [key, key] : [key, elsewhere]
            for (store, k) in zip([a, b], keys) {
                group.enter()
                store.appendMessage(NewMessage(conversation: k, sender: ann, text: "r\(round)", clientMsgId: "race-\(round)", ts: 1)) { r in
                    answers.withLock { $0.append(r) }
                    group.leave()
                }
            }
            XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
            let results = answers.withLock { $0 }.compactMap { try? $0.get() }
            XCTAssertEqual(results.count, 2, "round \(round): both answered")
            XCTAssertEqual(results.filter { !$0.duplicate }.count, 1, "round \(round): one stored it, the other got a replay")
            XCTAssertEqual(results.first?.message, results.last?.message, "round \(round): both answers name the same message")
        }
        XCTAssertEqual(try scalar("SELECT count(*) FROM messages"), 40, "one row per client_msg_id")
        XCTAssertEqual(try scalar("SELECT count(*) FROM (SELECT client_msg_id FROM messages GROUP BY 1 HAVING count(*) > 1) d"), 0)
        let last = try wait { a.lastSeq(key, completion: $0) } + (try wait { a.lastSeq(elsewhere, completion: $0) })
        XCTAssertEqual(last, 40, "each conversation's seq moved once per stored message, no hole")
        XCTAssertEqual(try scalar("SELECT count(*) FROM conversations c WHERE last_seq <> (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"), 0,
                       "gap-free in every conversation")
    }

    func testUnreadCountsInCompletionOrderNeverGoBackWithSeveralWriters() throws {
        let store = try open(writers: 2, readers: 1)
        defer { store.close() }
        let counts = Locked<[Int]>([])
        let group = DispatchGroup()
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in 0..<100 {
                group.enter()
                let k = ConversationKey(service: "website", clientId: "c\(t)-\(i % 10)")
                let sender = UserRecord(id: "s\(t)", role: "client", name: "S")
                store.appendMessage(NewMessage(conversation: k, sender: sender, text: "m", clientMsgId: nil, ts: 1), notify: ["bob"]) { r in
                    if case .success(let a) = r, let n = a.notifications.first?.unread.byService["website"] {
                        counts.withLock { $0.append(n) }
                    }
                    group.leave()
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        let seen = counts.withLock { $0 }
        XCTAssertEqual(seen.count, 400)
        XCTAssertEqual(seen, seen.sorted(), "no older unread count completes after a newer one")
        XCTAssertEqual(seen.last, 40, "the last answer counts every conversation")
    }

    func testAKeylessJobSeesEveryKeylessWriteSubmittedBeforeIt() throws {
        let store = try open(writers: 2, readers: 1)
        defer { store.close() }
        let missed = Locked<[Int]>([])
        let group = DispatchGroup()
        for i in 0..<200 {
            // Busy conversations meanwhile, on both writers.
            store.appendMessage(NewMessage(conversation: ConversationKey(service: "website", clientId: "c\(i % 9)"), sender: ann,
                                           text: "m", clientMsgId: nil, ts: 1)) { _ in }
            store.upsertUser(UserRecord(id: "u\(i)", role: "client", name: "U"), now: 1) { _ in }
            group.enter()
            store.write({ db -> Bool in
                try db.query("SELECT 1 FROM users WHERE id = $1", ["u\(i)"]).count == 1
            }, completion: { r in
                if (try? r.get()) != true { missed.withLock { $0.append(i) } }
                group.leave()
            })
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(missed.withLock { $0 }, [], "queued before, so seen (strict createNotifications relies on it)")
    }

    func testADeadlockBetweenTwoWritersIsRetriedAndBothCommit() throws {
        let store = try open(writers: 2, readers: 1)
        defer { store.close() }
        let setup = try schema.connect()
        try setup.execute("CREATE TABLE d (k integer PRIMARY KEY, v integer NOT NULL DEFAULT 0); INSERT INTO d (k) VALUES (1), (2)")
        setup.close()
        let results = Locked<[Result<Int, StoreError>]>([])
        let group = DispatchGroup()
        // Lock keys that go to different writers.
        let keys = ["k0"] + [(1...100).map { "k\($0)" }.first { PGWriters.fnv1a($0) % 2 != PGWriters.fnv1a("k0") % 2 } ?? "k1"]
        for (n, (first, second)) in [(1, 2), (2, 1)].enumerated() {
            group.enter()
            store.write(lockKey: keys[n], { db -> Int in
                _ = try db.query("UPDATE d SET v = v + 1 WHERE k = $1::integer", ["\(first)"])
                _ = try db.query("SELECT pg_sleep(0.3)")
                _ = try db.query("UPDATE d SET v = v + 1 WHERE k = $1::integer", ["\(second)"])
                return first
            }, completion: { r in results.withLock { $0.append(r) }; group.leave() })
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(results.withLock { $0 }.compactMap { try? $0.get() }.sorted(), [1, 2], "both committed")
        XCTAssertGreaterThanOrEqual(store.statistics.entries.first { $0.jsonKey == "retries" }?.value ?? 0, 1, "one ran again")
        XCTAssertEqual(try scalar("SELECT sum(v) FROM d"), 4, "each ran its updates once in the end")
    }

    func testAKilledWriterConnectionAnswersItsSendsUnavailableAndLaterSendsSucceed() throws {
        let store = try open(writers: 1, readers: 1)
        defer { store.close() }
        _ = try wait { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "before", clientMsgId: "k0", ts: 1), completion: $0) }
        // The writer's next batch: 20 sends, then a slow job (sorted last by its lock key)
        // during which its server process is terminated, on every run: the writer runs a batch
        // cut before COMMIT again on a new connection, until its retries are spent.
        // The writer is busy with one job while the batch is queued, so it takes it whole.
        let busy = DispatchSemaphore(value: 0)
        let hold = DispatchSemaphore(value: 0)
        store.write({ db in
            busy.signal()
            _ = try db.query("SELECT pg_sleep(0.3)")
        }, completion: { _ in hold.signal() })
        XCTAssertEqual(busy.wait(timeout: .now() + 10), .success)
        let answers = Locked<[Int: Result<AppendResult, StoreError>]>([:])
        let group = DispatchGroup()
        for i in 1...20 {
            group.enter()
            store.appendMessage(NewMessage(conversation: key, sender: ann, text: "m\(i)", clientMsgId: "k\(i)", ts: 1)) { r in
                answers.withLock { $0[i] = r }
                group.leave()
            }
        }
        group.enter()
        store.write(lockKey: "~slow", { db in _ = try db.query("SELECT pg_sleep(5)") }, completion: { _ in group.leave() })
        XCTAssertEqual(hold.wait(timeout: .now() + 10), .success)
        Thread.sleep(forTimeInterval: 0.5)
        let admin = try PGConnection(url: schema.serverURL)
        defer { admin.close() }
        XCTAssertGreaterThan(try schema.terminateConnections(except: admin), 0)
        let answered = Atomic<Bool>(false)
        let killerStopped = DispatchSemaphore(value: 0)
        let killerURL = schema.serverURL, killerSchema = schema!
        Thread.detachNewThread {
            defer { killerStopped.signal() }
            guard let killer = try? PGConnection(url: killerURL) else { return }
            defer { killer.close() }
            while !answered.load(ordering: .relaxed) {
                Thread.sleep(forTimeInterval: 0.2)
                _ = try? killerSchema.terminateConnections(except: killer)
            }
        }
        let cutAnswered = group.wait(timeout: .now() + 20)
        answered.store(true, ordering: .relaxed)
        XCTAssertEqual(killerStopped.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(cutAnswered, .success, "every job of the cut batch was answered")
        let cut = answers.withLock { $0 }
        for i in 1...20 {
            XCTAssertEqual(cut[i].map { r in if case .failure(.unavailable) = r { true } else { false } }, true,
                           "send \(i) of the cut batch: unavailable, never an ack (\(String(describing: cut[i])))")
        }
        // The writer reconnects; the client retries with the same ids: stored once each, in order.
        for i in 1...20 {
            let again = try wait { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "m\(i)", clientMsgId: "k\(i)", ts: 1), completion: $0) }
            XCTAssertFalse(again.duplicate, "nothing of the cut batch was stored")
            XCTAssertEqual(again.message.seq, Int64(i + 1))
        }
        XCTAssertEqual(try wait { store.lastSeq(key, completion: $0) }, 21, "readers reconnect too")
        XCTAssertGreaterThanOrEqual(store.statistics.entries.first { $0.jsonKey == "reconnects" }?.value ?? 0, 1)
    }

    func testABatchCutOnceBeforeCommitRunsAgainOnANewConnection() throws {
        let store = try open(writers: 1, readers: 1)
        defer { store.close() }
        let busy = DispatchSemaphore(value: 0)
        store.write({ db in
            busy.signal()
            _ = try db.query("SELECT pg_sleep(0.3)")
        }, completion: { _ in })
        XCTAssertEqual(busy.wait(timeout: .now() + 10), .success)
        let answers = Locked<[Int: Result<AppendResult, StoreError>]>([:])
        let group = DispatchGroup()
        for i in 1...5 {
            group.enter()
            store.appendMessage(NewMessage(conversation: key, sender: ann, text: "m\(i)", clientMsgId: "k\(i)", ts: 1)) { r in
                answers.withLock { $0[i] = r }
                group.leave()
            }
        }
        // Slow on its first run only (sorted last by its lock key): the cut comes during it.
        let runs = Atomic<Int>(0)
        group.enter()
        store.write(lockKey: "~slow", { db in
            if runs.add(1, ordering: .relaxed).newValue == 1 { _ = try db.query("SELECT pg_sleep(5)") }
        }, completion: { _ in group.leave() })
        Thread.sleep(forTimeInterval: 0.8)
        let admin = try PGConnection(url: schema.serverURL)
        defer { admin.close() }
        XCTAssertGreaterThan(try schema.terminateConnections(except: admin), 0)
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(answers.withLock { $0 }.compactMapValues { try? $0.get().message.seq }, [1: 1, 2: 2, 3: 3, 4: 4, 5: 5],
                       "nothing had been sent for COMMIT: the batch ran again and every send was stored once")
        XCTAssertEqual(runs.load(ordering: .relaxed), 2)
        XCTAssertGreaterThanOrEqual(store.statistics.entries.first { $0.jsonKey == "retries" }?.value ?? 0, 1)
    }

    func testAFailedCommitAnswersEveryJobOfItsBatchUnavailableAndLeavesNothing() throws {
        let store = try open(writers: 1, readers: 1)
        defer { store.close() }
        let setup = try schema.connect()
        // A deferred constraint is checked at COMMIT: the one way to make a COMMIT refuse.
        try setup.execute("CREATE TABLE once_only (k integer, CONSTRAINT once UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)")
        setup.close()
        let busy = DispatchSemaphore(value: 0)
        store.write({ db in
            busy.signal()
            _ = try db.query("SELECT pg_sleep(0.3)")
        }, completion: { _ in })
        XCTAssertEqual(busy.wait(timeout: .now() + 10), .success)
        let answers = Locked<[Result<Int64, StoreError>]>([])
        let group = DispatchGroup()
        for i in 1...10 {
            group.enter()
            store.appendMessage(NewMessage(conversation: key, sender: ann, text: "m\(i)", clientMsgId: "k\(i)", ts: 1)) { r in
                answers.withLock { $0.append(r.map(\.message.seq)) }
                group.leave()
            }
        }
        group.enter()
        store.write(lockKey: "~last", { db in _ = try db.query("INSERT INTO once_only VALUES (1), (1)") },
                    completion: { r in answers.withLock { $0.append(r.map { 0 }) }; group.leave() })
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        let all = answers.withLock { $0 }
        XCTAssertEqual(all.count, 11)
        XCTAssertEqual(all.filter { if case .failure(.unavailable) = $0 { true } else { false } }.count, 11,
                       "every job of the batch: unavailable, never an ack (\(all))")
        XCTAssertEqual(try wait { store.lastSeq(key, completion: $0) }, 0, "nothing of the batch is visible")
        XCTAssertEqual(try wait { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "m1", clientMsgId: "k1", ts: 1), completion: $0) }.duplicate,
                       false, "the retry stores it")
    }

    func testConnectionsKilledWhileIdleAreReplacedWithoutAFailedAnswer() throws {
        let store = try open(writers: 1, readers: 1)
        defer { store.close() }
        _ = try wait { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "a", clientMsgId: nil, ts: 1), completion: $0) }
        XCTAssertEqual(try wait { store.lastSeq(key, completion: $0) }, 1)
        let admin = try PGConnection(url: schema.serverURL)
        defer { admin.close() }
        XCTAssertEqual(try schema.terminateConnections(except: admin), 2, "the writer's and the reader's")
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(try wait { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "b", clientMsgId: nil, ts: 1), completion: $0) }.message.seq, 2,
                       "nothing was in flight: the writer reconnects at BEGIN and the send succeeds")
        XCTAssertEqual(try wait { store.lastSeq(key, completion: $0) }, 2, "the reader too")
    }

    func testNodesStartingTogetherMigrateOnce() throws {
        let opened = Locked<[PostgresStore]>([])
        let errors = Locked<[String]>([])
        let url = schema.url
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let s = try PostgresStore(url: url, writers: 1, readers: 1, now: 1, messageWording: MessageNotificationText.wording)
                opened.withLock { $0.append(s) }
            } catch {
                errors.withLock { $0.append("\(error)") }
            }
        }
        opened.withLock { $0 }.forEach { $0.close() }
        XCTAssertEqual(errors.withLock { $0 }, [])
        XCTAssertEqual(try scalar("SELECT count(*) FROM schema_migrations"), Int64(PGSchema.all.count))
        XCTAssertEqual(try scalar("SELECT max(version) FROM schema_migrations"), Int64(PGSchema.all.last?.0 ?? 0))
    }

    func testANewerSchemaIsRefusedWithAClearMessage() throws {
        try open().close()
        let db = try schema.connect()
        _ = try db.query("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        db.close()
        XCTAssertThrowsError(try open()) { error in
            XCTAssertTrue("\(error)".contains("newer than this hub knows"), "says why: \(error)")
        }
    }

    func testStatisticsReportTheWritersOwnKeys() throws {
        let store = try open()
        defer { store.close() }
        XCTAssertEqual(store.statistics.entries.map(\.jsonKey),
                       ["batches", "jobs", "largest_batch", "queued", "retries", "reconnects", "commit_wait_ms", "commit_ms"])
    }
}
