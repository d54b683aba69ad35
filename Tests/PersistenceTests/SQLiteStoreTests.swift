import Foundation
import Synchronization
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// The SQLite store on a real database file: migrations, gap-free sequences under concurrent
// sends, idempotent retries, paging, read marks, assignments, durability across reopen.
final class SQLiteStoreTests: XCTestCase {
    var dir: String!
    var path: String { dir + "/hub.sqlite" }

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    private func open() throws -> SQLiteStore { try SQLiteStore(path: path, now: 1, messageWording: MessageNotificationText.wording) }

    /// Runs an async store call and waits for its result.
    private func wait<T: Sendable>(_ call: (@escaping StoreCompletion<T>) -> Void) throws -> T {
        let box = Locked<Result<T, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        call { r in box.withLock { $0 = r }; done.signal() }
        guard done.wait(timeout: .now() + 10) == .success, let r = box.withLock({ $0 }) else {
            throw StoreError.unavailable("timed out")
        }
        return try r.get()
    }

    let ann = UserRecord(id: "ann", role: "client", name: "Ann")
    let key = ConversationKey(service: "website", clientId: "ann")

    private func send(_ store: SQLiteStore, _ text: String, from u: UserRecord? = nil, id: String? = nil) throws -> AppendResult {
        try wait { store.appendMessage(NewMessage(conversation: key, sender: u ?? ann, text: text, clientMsgId: id, ts: 1000), completion: $0) }
    }

    func testDatabaseIsInWALModeWithMigrationsRecorded() throws {
        let store = try open()
        store.close()
        let db = try SQLiteConnection(path: path)
        XCTAssertEqual(try db.scalarText("PRAGMA journal_mode"), "wal")
        XCTAssertEqual(try db.scalarText("SELECT COUNT(*) FROM schema_migrations"), "\(Migrations.all.count)", "every migration is recorded")
        XCTAssertEqual(try db.scalarText("SELECT MAX(version) FROM schema_migrations"), "\(Migrations.all.last?.0 ?? 0)")
        try open().close() // reopening an up-to-date file is a no-op
    }

    func testCloseReturnsWithEveryConnectionClosedAndTheDatabaseInOneFile() throws {
        for round in 1...20 {
            let store = try open()
            _ = try send(store, "m\(round)", id: "k\(round)")
            // Both readers have opened their connections (each serves one of these).
            for _ in 0..<4 { _ = try wait { store.messages(key, after: 0, limit: 10, completion: $0) } }
            store.close()
            // The last connection to close checkpoints the WAL and removes it and the shared
            // memory file; a connection still open after close() would leave them.
            let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
            XCTAssertEqual(files, ["hub.sqlite"], "round \(round): only the database file is left")
        }
        let db = try SQLiteConnection(path: path, readOnly: true)
        XCTAssertEqual(try db.scalarText("SELECT COUNT(*) FROM messages"), "20", "every acknowledged send is in the file")
    }

    func testTheCheckpointerCopiesTheWALBackAndTheWALStaysBounded() throws {
        let store = try open()
        defer { store.close() }
        // One commit per send (each waits for its ack): about five WAL pages each, so the WAL
        // passes the checkpoint threshold every ~200 sends.
        for i in 1...3_000 { _ = try send(store, "m\(i)", id: "k\(i)") }
        let deadline = Date().addingTimeInterval(10)
        while store.writerStats.checkpoints == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        let stats = store.writerStats
        XCTAssertGreaterThan(stats.checkpoints, 0, "checkpoints ran on the checkpointer's thread")
        // ~15,000 pages in all: past the cap several times, each time started over by the writer.
        XCTAssertGreaterThan(stats.writerCheckpoints, 0, "the writer started the WAL over past its cap")
        let db = try SQLiteConnection(path: path, readOnly: true)
        let pageSize = Int(try db.scalarText("PRAGMA page_size") ?? "") ?? 0
        let wal = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? -1
        // The WAL file keeps its largest size, so this also bounds it at every moment before:
        // started over at four times the cap at the latest (plus the commit that crossed it).
        let cap = (4 * DatabaseWriter.maxWALPages + 64) * (pageSize + 24)
        XCTAssertGreaterThan(wal, 0)
        XCTAssertLessThanOrEqual(wal, cap, "the WAL was started over instead of growing (\(stats.writerCheckpoints) capped checkpoints)")
        XCTAssertEqual(try db.scalarText("SELECT COUNT(*) FROM messages"), "3000")
        print("checkpoints: \(stats.checkpoints) by the checkpointer, \(stats.writerCheckpoints) by the writer; "
              + "WAL file \(wal / 1024) KiB (cap \(cap / 1024) KiB)")
    }

    func testNewerDatabaseIsRefusedWithAClearMessage() throws {
        try open().close()
        let db = try SQLiteConnection(path: path)
        try db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
        XCTAssertThrowsError(try open()) { error in
            XCTAssertTrue("\(error)".contains("newer than this hub knows"), "says why: \(error)")
        }
    }

    func testConcurrentSendsGetGapFreeSequencesInOneConversation() throws {
        let store = try open()
        defer { store.close() }
        let seqs = Locked<[Int64]>([])
        let group = DispatchGroup()
        for sender in 0..<20 {
            for i in 0..<50 {
                group.enter()
                let u = UserRecord(id: "u\(sender)", role: "client", name: "U")
                store.appendMessage(NewMessage(conversation: key, sender: u, text: "m\(i)", clientMsgId: "c\(i)", ts: 1)) { r in
                    if case .success(let a) = r { seqs.withLock { $0.append(a.message.seq) } }
                    group.leave()
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(seqs.withLock { $0.sorted() }, Array(1...1000), "1,000 acknowledged sends take seqs 1…1000 exactly once")
        let stats = store.writerStats
        XCTAssertEqual(stats.jobs, 1000)
        XCTAssertLessThan(stats.batches, 1000, "group commit: several sends share a transaction (\(stats.batches) batches)")
    }

    func testRetriedSendReturnsTheFirstMessageAndStoresNothingNew() throws {
        let store = try open()
        defer { store.close() }
        let first = try send(store, "hello", id: "abc")
        let again = try send(store, "hello (retry)", id: "abc")
        XCTAssertFalse(first.duplicate)
        XCTAssertTrue(again.duplicate, "same sender and client_msg_id is a duplicate")
        XCTAssertEqual(again.message.seq, first.message.seq)
        XCTAssertEqual(again.message.text, "hello", "the first message is returned")
        XCTAssertEqual(try wait { store.lastSeq(key, completion: $0) }, 1, "nothing new stored")
        let other = UserRecord(id: "bob", role: "website_agent", name: "Bob")
        XCTAssertFalse(try send(store, "hi", from: other, id: "abc").duplicate, "client_msg_id is unique per sender only")
    }

    func testHistoryPagesBackwardsAndSinceForwards() throws {
        let store = try open()
        defer { store.close() }
        for i in 1...25 { _ = try send(store, "m\(i)") }
        let newest = try wait { store.messages(key, before: nil, limit: 10, completion: $0) }
        XCTAssertEqual(newest.messages.map(\.seq), Array(16...25), "the newest page, ascending")
        XCTAssertTrue(newest.more)
        let older = try wait { store.messages(key, before: 16, limit: 10, completion: $0) }
        XCTAssertEqual(older.messages.map(\.seq), Array(6...15))
        let oldest = try wait { store.messages(key, before: 6, limit: 10, completion: $0) }
        XCTAssertEqual(oldest.messages.map(\.seq), Array(1...5))
        XCTAssertFalse(oldest.more, "nothing before seq 1")
        let since = try wait { store.messages(key, after: 20, limit: 100, completion: $0) }
        XCTAssertEqual(since.messages.map(\.seq), Array(21...25))
        XCTAssertFalse(since.more)
    }

    func testReadMarkNeverMovesBackwardsNorPastTheLastMessage() throws {
        let store = try open()
        defer { store.close() }
        for i in 1...5 { _ = try send(store, "m\(i)", from: UserRecord(id: "bob", role: "website_agent", name: "Bob")) }
        XCTAssertEqual(try wait { store.markRead(user: "ann", key, seq: 3, now: 1, completion: $0) }.mark, 3)
        XCTAssertEqual(try wait { store.markRead(user: "ann", key, seq: 2, now: 1, completion: $0) }.mark, 3, "never backwards")
        XCTAssertEqual(try wait { store.markRead(user: "ann", key, seq: 99, now: 1, completion: $0) }.mark, 5, "capped at the last seq")
        let summary = try wait { store.conversations([key], for: "ann", completion: $0) }
        XCTAssertEqual(summary.first?.unread, 0)
        XCTAssertEqual(summary.first?.lastMessage?.seq, 5)
    }

    func testAssignmentsReplaceAndRemoveReportingTheAgent() throws {
        let store = try open()
        defer { store.close() }
        XCTAssertNil(try wait { store.setAssignment(Assignment(conversation: key, agentId: "wes"), now: 1, completion: $0) })
        XCTAssertEqual(try wait { store.setAssignment(Assignment(conversation: key, agentId: "wendy"), now: 2, completion: $0) }, "wes")
        XCTAssertEqual(try wait { store.allAssignments(completion: $0) }, [Assignment(conversation: key, agentId: "wendy")])
        XCTAssertEqual(try wait { store.removeAssignment(key, completion: $0) }, "wendy")
        XCTAssertNil(try wait { store.removeAssignment(key, completion: $0) }, "removing twice finds nothing")
    }

    func testUsersAreUpsertedAndReadBack() throws {
        let store = try open()
        defer { store.close() }
        _ = try wait { store.upsertUser(UserRecord(id: "ann", role: "client", name: "Ann", services: ["website"]), now: 1, completion: $0) }
        _ = try wait { store.upsertUser(UserRecord(id: "ann", role: "client", name: "Ann B.", services: ["website", "courses"]), now: 2, completion: $0) }
        let u = try wait { store.user("ann", completion: $0) }
        XCTAssertEqual(u?.name, "Ann B.")
        XCTAssertEqual(u?.services, ["website", "courses"])
        XCTAssertNil(try wait { store.user("nobody", completion: $0) })
    }

    func testAcknowledgedMessagesSurviveReopen() throws {
        var store: SQLiteStore? = try open()
        for i in 1...10 { _ = try send(store!, "m\(i)", id: "k\(i)") }
        store?.close()
        store = nil
        let reopened = try open()
        defer { reopened.close() }
        let all = try wait { reopened.messages(key, after: 0, limit: 100, completion: $0) }
        XCTAssertEqual(all.messages.map(\.text), (1...10).map { "m\($0)" })
        XCTAssertEqual(try send(reopened, "m11").message.seq, 11, "the sequence continues after a restart")
    }

    func testTextIsStoredExactlyIncludingEmptyQuotesAndUnicode() throws {
        let store = try open()
        defer { store.close() }
        let text = "it's \"quoted\"; DROP TABLE messages; -- 😀 \u{0}x"
        _ = try send(store, text)
        let page = try wait { store.messages(key, after: 0, limit: 1, completion: $0) }
        XCTAssertEqual(page.messages.first?.text, text, "bound, never spliced into SQL")
    }

    func testAFailingJobLeavesNothingBehindAndItsBatchStillCommits() throws {
        let store = try open()
        defer { store.close() }
        let failing = DispatchSemaphore(value: 0)
        // One job writes, then fails: its write must be rolled back to its savepoint.
        store.write({ db -> Int in
            try db.statement("INSERT INTO users (id, role, name, created_at, updated_at) VALUES ('half', 'client', 'H', 1, 1)").run()
            throw StoreError.conflict("fails after writing")
        }, { (_: Result<Int, StoreError>) in failing.signal() })
        _ = try wait { store.upsertUser(UserRecord(id: "whole", role: "client", name: "W"), now: 1, completion: $0) }
        failing.wait()
        XCTAssertNil(try wait { store.user("half", completion: $0) }, "the failed job's insert was rolled back")
        XCTAssertNotNil(try wait { store.user("whole", completion: $0) }, "the other job of the batch committed")
    }

    // MARK: dedupe by ON CONFLICT

    func testAReplayFromAnotherConversationReturnsTheFirstMessageAndCreatesNothing() throws {
        let store = try open()
        defer { store.close() }
        let first = try send(store, "hello", id: "abc")
        let elsewhere = ConversationKey(service: "marketing", clientId: "ann")
        let again = try wait {
            store.appendMessage(NewMessage(conversation: elsewhere, sender: ann, text: "hello", clientMsgId: "abc", ts: 2000), completion: $0)
        }
        XCTAssertTrue(again.duplicate, "(sender, client_msg_id) is unique across conversations")
        XCTAssertEqual(again.message, first.message, "the first message, in its own conversation (the bridge answers 409 for it)")
        XCTAssertEqual(try wait { store.lastSeq(elsewhere, completion: $0) }, 0, "nothing stored in the other conversation")
        XCTAssertEqual(try wait { store.allConversations(service: nil, completion: $0) }, [key],
                       "the conversation the duplicate named is not created")
        XCTAssertFalse(try wait {
            store.appendMessage(NewMessage(conversation: elsewhere, sender: ann, text: "new", clientMsgId: "abd", ts: 3000), completion: $0)
        }.duplicate, "a new client_msg_id is stored there")
        XCTAssertEqual(try wait { store.lastSeq(elsewhere, completion: $0) }, 1)
    }

    private func idempotencyRows(_ store: SQLiteStore, _ key: String) throws -> Int {
        try wait { done in
            store.read({ db -> Int in
                let s = try db.statement("SELECT COUNT(*) FROM idempotency WHERE key = ?1")
                try s.bind(.text(key))
                return try s.step() ? Int(s.int(0)) : -1
            }, done)
        }
    }

    func testAThrowingBodyLeavesNoClaimAndTheKeyServesTheRetry() throws {
        let store = try open()
        defer { store.close() }
        let claim = IdempotencyClaim<Int>(key: "k1", fingerprint: "POST /x", render: { StoredResponse(status: 201, body: "\($0)") })
        XCTAssertThrowsError(try wait { store.writeOnce(claim, now: 1, { _ in throw StoreError.conflict("refused") }, $0) }) {
            XCTAssertEqual($0 as? StoreError, .conflict("refused"), "the body's error is the answer")
        }
        XCTAssertEqual(try idempotencyRows(store, "k1"), 0, "the claim went with the body's writes")
        guard case .fresh(7) = try wait({ store.writeOnce(claim, now: 2, { _ in 7 }, $0) }) else {
            return XCTFail("a retry after a failure runs the body")
        }
        guard case .replay(let r) = try wait({ store.writeOnce(claim, now: 3, { _ in 8 }, $0) }) else {
            return XCTFail("the key now replays the answer kept")
        }
        XCTAssertEqual(r, StoredResponse(status: 201, body: "7"))
        let other = IdempotencyClaim<Int>(key: "k1", fingerprint: "POST /y", render: { StoredResponse(status: 201, body: "\($0)") })
        guard case .mismatch = try wait({ store.writeOnce(other, now: 4, { _ in 9 }, $0) }) else {
            return XCTFail("the same key for another request is a mismatch")
        }
        let unkept = IdempotencyClaim<Int>(key: "k2", fingerprint: "POST /x", render: { StoredResponse(status: 201, body: "\($0)") })
        guard case .fresh(0) = try wait({ store.writeOnce(unkept, now: 5, keep: { _ in false }, { _ in 0 }, $0) }) else {
            return XCTFail("an answer not kept is fresh")
        }
        XCTAssertEqual(try idempotencyRows(store, "k2"), 0, "an answer not kept leaves the key free")
    }

    func testAMessageNotificationCountsOnWhileUnreadAndStartsAgainAfterARead() throws {
        let store = try open()
        defer { store.close() }
        func note(_ text: String) throws -> NotificationRecord? {
            try wait {
                store.appendMessage(NewMessage(conversation: key, sender: ann, text: text, clientMsgId: nil, ts: 1000),
                                    notify: ["bob"], completion: $0)
            }.notifications.first?.record
        }
        let one = try note("a")
        let two = try note("b")
        XCTAssertEqual(one?.title, "New message from Ann")
        XCTAssertEqual(two?.title, "2 new messages from Ann", "unread: counted on")
        XCTAssertEqual(two?.id, one?.id, "one row per user and conversation")
        XCTAssertEqual(two?.data, #"{"channel":"conv:website:ann","seq":2,"count":2}"#)
        _ = try wait { store.markRead(user: "bob", key, seq: 2, now: 2000, completion: $0) }
        let three = try note("c")
        XCTAssertEqual(three?.title, "New message from Ann", "after a read: starts at 1 again")
        XCTAssertEqual(three?.id, one?.id)
        XCTAssertEqual(three?.read, false)
        let page = try wait { store.notifications(for: "bob", NotificationQuery(limit: 10), completion: $0) }
        XCTAssertEqual(page.items.map(\.title), ["New message from Ann"], "still one row")
        XCTAssertEqual(page.items.first?.body, "c")
        XCTAssertEqual(try wait { store.storedTotals(completion: $0) }, StoredTotals(messages: 3, notifications: 1),
                       "an update in place is not counted as a new row")
    }

    func testAFanOutChunkReturnsTheUsersOnlineInTheSnapshotItWasGiven() throws {
        let store = try open()
        defer { store.close() }
        for id in ["a", "b", "c"] {
            _ = try wait { store.upsertUser(UserRecord(id: id, role: "client", name: id), now: 1, completion: $0) }
        }
        let content = NotificationContent(service: "platform", category: "updates", title: "T", body: "B", data: "{}")
        guard case .fresh(let start) = try wait({ store.startFanout(content, audience: "client", now: 1, claim: nil, completion: $0) }) else {
            return XCTFail("a fan-out without a key starts fresh")
        }
        let first = try wait { store.fanoutStep(start.id, limit: 2, now: 2, emailDelayMs: 0, online: ["b", "c", "zed"], completion: $0) }
        XCTAssertEqual(first.stored, 2)
        XCTAssertEqual(first.delivered.map(\.userId), ["b"], "of the chunk (a, b), only b was online")
        XCTAssertEqual(first.delivered.first?.unread, UnreadCounts(byService: ["platform": 1]))
        XCTAssertFalse(first.finished)
        let second = try wait { store.fanoutStep(start.id, limit: 2, now: 3, emailDelayMs: 0, online: [], completion: $0) }
        XCTAssertEqual(second.stored, 1)
        XCTAssertEqual(second.delivered, [], "nobody online: stored, nothing to push")
        XCTAssertTrue(second.finished)
    }
}
