import CSQLite
import Foundation
import Synchronization
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// What only the SQLite store has, on a real database file: WAL, migrations, the checkpointer,
// one file after close, and (until PostgresStore is a NotificationStore) its idempotency
// claims and fan-out chunks. The Store contract it shares is in StoreContractTests.
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

    func testTheWriterSyncsEveryCommitUnlessDurabilityIsNormal() throws {
        // synchronous: 2 is FULL (the WAL is fsynced at every commit: an ack survives a power
        // cut), 1 is NORMAL (synced at checkpoints only).
        for (durability, expected) in [(SQLiteStore.Durability.full, "2"), (.normal, "1")] {
            let store = try SQLiteStore(path: path, now: 1, messageWording: MessageNotificationText.wording, durability: durability)
            let level = try wait { store.write({ db in try db.scalarText("PRAGMA synchronous") ?? "?" }, $0) }
            XCTAssertEqual(level, expected, "\(durability)")
            store.close()
        }
        let byDefault = try open()
        defer { byDefault.close() }
        XCTAssertEqual(try wait { byDefault.write({ db in try db.scalarText("PRAGMA synchronous") ?? "?" }, $0) }, "2", "full unless asked")
    }

    func testSQLiteKeepsNoMemoryStatistics() throws {
        // Turned off before SQLite's first use (the first SQLiteConnection): with them on, every
        // allocation of every connection takes one process-wide mutex. Off, SQLite counts no
        // memory at all, so what it reports in use stays 0 after real work.
        let store = try open()
        defer { store.close() }
        XCTAssertEqual(try send(store, "hello there").message.seq, 1)
        var used: Int64 = -1, highest: Int64 = -1
        XCTAssertEqual(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &used, &highest, 0), SQLITE_OK)
        XCTAssertEqual(used, 0, "SQLite counted its memory: its statistics are on")
    }

    func testADeletesWebhookTombstonesReadOneConversationsEventsThroughTheIndex() throws {
        try open().close()
        let db = try SQLiteConnection(path: path)
        let plan = try db.statement("EXPLAIN QUERY PLAN " + SQLiteStore.webhookTombstones)
        try plan.bind(.text("conv:website:ann"), .text("\"msg_id\":1,"))
        var steps: [String] = []
        while try plan.step() { steps.append(plan.text(3)) }
        XCTAssertTrue(steps.contains { $0.contains("USING INDEX webhook_events_by_key (ordering_key=?)") }, "\(steps)")
        XCTAssertFalse(steps.contains { $0.hasPrefix("SCAN webhook_events") }, "no scan of the whole outbox: \(steps)")
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
