import Foundation
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// `montrose-hub migrate`'s copy and verify (StoreMigration), on a real SQLite file and a real
// PostgreSQL schema: a store filled through the Store API reads back equal through the Store
// API after the move, continues where it was (seqs, ids, epoch), and the verify catches a
// changed row; a target with data is refused; a failed copy leaves the target empty.
final class StoreMigrationTests: XCTestCase {
    private var dir = ""
    private var schema: TestPGSchema?
    private var sqlitePath: String { dir + "/hub.sqlite" }

    override func setUpWithError() throws {
        schema = try TestPGSchema()
        dir = NSTemporaryDirectory() + "migrate-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        schema?.drop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    func answer<T: Sendable>(_ call: (@escaping StoreCompletion<T>) -> Void) throws -> T {
        let box = Locked<Result<T, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        call { r in box.withLock { $0 = r }; done.signal() }
        guard done.wait(timeout: .now() + 30) == .success, let r = box.withLock({ $0 }) else {
            throw StoreError.unavailable("timed out")
        }
        return try r.get()
    }

    let ann = UserRecord(id: "ann", role: "client", name: "Ann", email: "ann@example.com")
    let bob = UserRecord(id: "bob", role: "client", name: "Bob \\ \"B\"")
    let agent = UserRecord(id: "ag", role: "website_agent", name: "Agent Ünï 🎧", services: ["website"])
    let annChat = ConversationKey(service: "website", clientId: "ann")
    let bobChat = ConversationKey(service: "website", clientId: "bob")
    let courses = ConversationKey(service: "courses", clientId: "ann")
    var keys: [ConversationKey] { [annChat, bobChat, courses] }
    var users: [String] { ["ann", "bob", "ag", "zed"] }
    let texts = ["hello", "nul\u{0}inside", "back\\slash \\0 not a NUL", "ünïcödé 🎉 \u{7}\t\n", "", "\u{0}"]

    /// Everything of every table, through the Store API.
    func fill(_ store: SQLiteStore) throws {
        for u in [ann, bob, agent, UserRecord(id: "zed", role: "client", name: "Zed")] {
            _ = try answer { store.upsertUser(u, now: 10, completion: $0) }
        }
        _ = try answer { store.setAssignment(Assignment(conversation: annChat, agentId: "ag"), now: 11, completion: $0) }
        for (i, text) in texts.enumerated() {
            _ = try answer { store.appendMessage(NewMessage(conversation: annChat, sender: ann, text: text, clientMsgId: "a\(i)", ts: 100 + Int64(i)), completion: $0) }
            _ = try answer { store.appendMessage(NewMessage(conversation: annChat, sender: agent, text: "re: " + text, clientMsgId: nil, ts: 200 + Int64(i)), notify: ["ann"], completion: $0) }
        }
        _ = try answer { store.appendMessage(NewMessage(conversation: courses, sender: ann, text: "course \u{0}", clientMsgId: "c1", ts: 300), completion: $0) }
        // The support desk: an internal note, a status, and a queued conversation (courses).
        _ = try answer { store.appendMessage(NewMessage(conversation: annChat, sender: agent, text: "note \u{0}", clientMsgId: nil, ts: 301, isInternal: true), completion: $0) }
        _ = try answer { store.setStatus(annChat, "pending", by: "ag", now: 302, completion: $0) }
        // More than one INSERT batch of the copy.
        let group = DispatchGroup()
        for i in 0..<2_100 {
            group.enter()
            store.appendMessage(NewMessage(conversation: bobChat, sender: bob, text: "m\(i)", clientMsgId: "b\(i)", ts: 400 + Int64(i))) { _ in group.leave() }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        _ = try answer { store.markRead(user: "ann", annChat, seq: 3, now: 500, completion: $0) }
        _ = try answer { store.markRead(user: "ag", bobChat, seq: 1_000, now: 500, completion: $0) }
        store.recordAudit(actor: "admin", action: "assign", target: "website:ann", ts: 501)
        let mailNow = NotificationContent(service: "courses", category: "updates", title: "T\u{0}", body: "B \\ ü", data: "{\"a\":1}", email: .now)
        let mailLater = NotificationContent(service: "wallet", category: "pay", title: "Paid", body: "", data: "{}", email: .fallback)
        _ = try answer { store.createNotifications(mailNow, users: ["ann", "bob"], strict: false, now: 600, emailDelayMs: 0, claim: nil, completion: $0) }
        let keyed = IdempotencyClaim<UserNotifications>(key: "k-1", fingerprint: "POST /n", render: { _ in StoredResponse(status: 201, body: "{}") })
        _ = try answer { store.createNotifications(mailLater, users: ["ann", "nobody"], strict: false, now: 601, emailDelayMs: 60_000, claim: keyed, completion: $0) }
        guard case .fresh(let broadcast) = try answer({ store.createBroadcast(audience: "all", title: "Hi all", body: "b", data: "{}", now: 602, claim: nil, completion: $0) }) else {
            return XCTFail("broadcast stored")
        }
        _ = try answer { store.markNotificationsRead(user: "ann", .ids([broadcast.id]), service: nil, now: 603, completion: $0) }
        store.recordPushes([PushedNotification(notification: broadcast.id, user: "bob", at: 604)])
        let fan = NotificationContent(service: "courses", category: "news", title: "Fan \u{0}", body: "out", data: "{}")
        guard case .fresh(let finished) = try answer({ store.startFanout(fan, audience: "client", now: 700, claim: nil, completion: $0) }),
              case .fresh(let unfinished) = try answer({ store.startFanout(fan, audience: "all", now: 701, claim: nil, completion: $0) }) else {
            return XCTFail("fan-outs started")
        }
        _ = try answer { store.fanoutStep(finished.id, limit: 10, now: 702, emailDelayMs: 0, online: ["ann"], completion: $0) }
        _ = try answer { store.fanoutStep(unfinished.id, limit: 1, now: 703, emailDelayMs: 0, online: [], completion: $0) }
        let once = IdempotencyClaim<String>(key: "k-once", fingerprint: "f", render: { StoredResponse(status: 200, body: $0) })
        _ = try answer { store.once(once, now: 704, make: { "made \u{e9}" }, completion: $0) }
        let due = try answer { store.dueMail(now: 10_000, limit: 10, completion: $0) }
        if let first = due.first { try answer { store.finishMail(first.id, .sent, now: 705, completion: $0) } }
        store.usersSeen([UserSeen(user: "bob", at: 706)])
    }

    /// What the Store API answers, to be equal on both stores.
    struct Snapshot: Equatable {
        var epoch = ""
        var pages: [MessagePage] = []
        var lastSeqs: [Int64] = []
        var readMarks: [[String: Int64]] = []
        var notifications: [NotificationPage] = []
        var users: [UserRecord?] = []
        var assignments: [String] = []
        var totals: StoredTotals?
        var unfinished: [Int64] = []
        var outbox: OutboxCounts?
        var mail: [OutboxMail] = []
        var receipt: NotificationReceipt?
    }

    func snapshot(_ store: any Store & NotificationStore) throws -> Snapshot {
        var s = Snapshot()
        s.epoch = store.epoch
        for key in keys {
            s.pages.append(try answer { store.messages(key, after: 0, limit: 5_000, completion: $0) })
            s.pages.append(try answer { store.messages(key, before: nil, limit: 7, completion: $0) })
            let state = try answer { store.conversationState(key, messagesAfter: nil, limit: 0, completion: $0) }
            s.lastSeqs.append(state.lastSeq)
            s.readMarks.append(state.readMarks)
        }
        for user in users {
            s.notifications.append(try answer { store.notifications(for: user, NotificationQuery(limit: 50), completion: $0) })
            s.notifications.append(try answer { store.notifications(for: user, NotificationQuery(limit: 2, service: "courses", unreadOnly: true), completion: $0) })
            s.users.append(try answer { store.user(user, completion: $0) })
        }
        s.assignments = try answer { store.allAssignments(completion: $0) }.map { "\($0.conversation)=\($0.agentId)" }.sorted()
        s.totals = try answer { store.storedTotals(completion: $0) }
        s.unfinished = try answer { store.unfinishedFanouts(completion: $0) }
        s.outbox = try answer { store.outboxCounts(completion: $0) }
        s.mail = try answer { store.dueMail(now: 1_000_000, limit: 50, completion: $0) }
        if let id = s.notifications.first?.items.first?.id { s.receipt = try answer { store.receipt(id, completion: $0) } }
        return s
    }

    /// A filled SQLite file, closed, and what its store answered.
    func filledSource() throws -> Snapshot {
        let store = try SQLiteStore(path: sqlitePath, now: 1, messageWording: MessageNotificationText.wording)
        try fill(store)
        store.close() // after its background writes (audit, pushes, last-seen times)
        let reopened = try SQLiteStore(path: sqlitePath, now: 1, messageWording: MessageNotificationText.wording)
        defer { reopened.close() }
        return try snapshot(reopened)
    }

    func testAMigratedStoreReadsBackEqualAndContinuesWhereItWas() throws {
        let schema = try XCTUnwrap(schema)
        let before = try filledSource()
        XCTAssertEqual(before.lastSeqs, [13, 2_100, 1], "12 messages and a note in ann's")
        XCTAssertTrue(before.pages[0].messages.contains { $0.text == "nul\u{0}inside" })
        var lines: [String] = []
        let reports = try StoreMigration.migrate(sqlitePath: sqlitePath, postgresURL: schema.url, now: 2) { lines.append($0) }
        XCTAssertEqual(reports.map(\.table), MigrationTable.all.map(\.name))
        XCTAssertTrue(reports.allSatisfy(\.matches), StoreMigration.summary(reports))
        XCTAssertEqual(reports.first { $0.table == "messages" }?.targetRows, 13 + 1 + 2_100)
        XCTAssertTrue(lines.contains("messages: 2114 rows copied"), "\(lines)")
        for table in ["users", "assignments", "read_marks", "audit_log", "desk_events", "notifications", "broadcast_state", "fanouts", "outbox", "idempotency", "store_meta"] {
            XCTAssertGreaterThan(reports.first { $0.table == table }?.targetRows ?? 0, 0, "\(table) was filled")
        }

        let store = try PostgresStore(url: schema.url, now: 3, messageWording: MessageNotificationText.wording)
        defer { store.close() }
        let after = try snapshot(store)
        XCTAssertEqual(after.epoch, before.epoch, "the epoch moves with the store: clients keep their positions")
        XCTAssertEqual(after.pages, before.pages)
        XCTAssertEqual(after.lastSeqs, before.lastSeqs)
        XCTAssertEqual(after.readMarks, before.readMarks)
        XCTAssertEqual(after.notifications, before.notifications)
        XCTAssertEqual(after.users, before.users)
        XCTAssertEqual(after, before)

        // Seqs and ids go on from the copied ones, no hole, no clash.
        let next = try answer { store.appendMessage(NewMessage(conversation: bobChat, sender: bob, text: "after", clientMsgId: "new", ts: 9_000), completion: $0) }
        XCTAssertEqual(next.message.seq, 2_101)
        XCTAssertGreaterThan(next.message.msgId, before.pages.flatMap(\.messages).map(\.msgId).max() ?? 0)
        let retried = try answer { store.appendMessage(NewMessage(conversation: bobChat, sender: bob, text: "again", clientMsgId: "b5", ts: 9_001), completion: $0) }
        XCTAssertTrue(retried.duplicate, "a retry of a message sent before the move is still a duplicate")
        let fresh = try answer { store.appendMessage(NewMessage(conversation: ConversationKey(service: "website", clientId: "zed"),
                                                                sender: UserRecord(id: "zed", role: "client", name: "Zed"),
                                                                text: "new conversation", clientMsgId: nil, ts: 9_002), completion: $0) }
        XCTAssertEqual(fresh.message.seq, 1)
        // Every identity goes on past the copied ids (a clash would fail these writes).
        _ = try answer { store.upsertUser(UserRecord(id: "yan", role: "client", name: "Yan", email: "yan@example.com"), now: 9_003, completion: $0) }
        let content = NotificationContent(service: "courses", category: "c", title: "new", body: "", data: "{}", email: .now)
        _ = try answer { store.createNotifications(content, users: ["ann"], strict: false, now: 9_003, emailDelayMs: 0, claim: nil, completion: $0) }
        guard case .fresh(let fan) = try answer({ store.startFanout(content, audience: "client", now: 9_004, claim: nil, completion: $0) }) else {
            return XCTFail("a fan-out after the move")
        }
        XCTAssertEqual(fan.count, 4, "ann, bob, zed and yan, in users' copied rowid order")
        XCTAssertEqual(try answer { store.fanoutStep(fan.id, limit: 10, now: 9_005, emailDelayMs: 0, online: [], completion: $0) }.stored, 4)
        store.recordAudit(actor: "admin", action: "after", target: "t", ts: 9_006)
        let db = try schema.connect()
        defer { db.close() }
        for (table, column) in [("users", "rowid"), ("conversations", "id"), ("messages", "id"), ("audit_log", "id"),
                                ("notifications", "id"), ("fanouts", "id"), ("outbox", "id")] {
            let r = try db.query("SELECT COUNT(*), COUNT(DISTINCT \(column)) FROM \(table)")
            XCTAssertEqual(r.int(0, 0), r.int(0, 1), table)
        }
        // The audit entry is a background write: it lands a little later.
        let deadline = Date().addingTimeInterval(10)
        while try db.query("SELECT COUNT(*) FROM audit_log").int(0, 0) < 2, Date() < deadline { usleep(20_000) }
        let audit = try db.query("SELECT COUNT(*), COUNT(DISTINCT id) FROM audit_log")
        XCTAssertEqual([audit.int(0, 0), audit.int(0, 1)], [2, 2])
        let totals = try answer { store.storedTotals(completion: $0) }
        XCTAssertEqual(totals.messages, (before.totals?.messages ?? 0) + 2, "striped totals count the copied rows")
        XCTAssertEqual(totals.notifications, (before.totals?.notifications ?? 0) + 1 + 4)
        XCTAssertEqual(try answer { store.claimUnfinishedFanouts(node: "n1", now: 10_000, completion: $0) }, before.unfinished,
                       "the unfinished fan-out is resumed on PostgreSQL")
    }

    func testVerifyOnlyPassesAndNamesATableChangedAfterwards() throws {
        let schema = try XCTUnwrap(schema)
        _ = try filledSource()
        _ = try StoreMigration.migrate(sqlitePath: sqlitePath, postgresURL: schema.url, now: 2) { _ in }
        XCTAssertTrue(try StoreMigration.verify(sqlitePath: sqlitePath, postgresURL: schema.url) { _ in }.allSatisfy(\.matches))
        let db = try schema.connect()
        defer { db.close() }
        // One escaped text, changed so that it still decodes (the NUL kept, one character more).
        try db.execute("UPDATE messages SET text = text || 'x' WHERE text_escaped AND id = (SELECT MIN(id) FROM messages WHERE text_escaped)")
        let reports = try StoreMigration.verify(sqlitePath: sqlitePath, postgresURL: schema.url) { _ in }
        XCTAssertEqual(reports.filter { !$0.matches }.map(\.table), ["messages"], StoreMigration.summary(reports))
        XCTAssertEqual(reports.first { $0.table == "messages" }.map { $0.sourceRows == $0.targetRows }, true,
                       "same count, different checksum")
        try db.execute("DELETE FROM read_marks WHERE user_id = 'ag'")
        let two = try StoreMigration.verify(sqlitePath: sqlitePath, postgresURL: schema.url) { _ in }
        XCTAssertEqual(two.filter { !$0.matches }.map(\.table), ["messages", "read_marks"])
        XCTAssertTrue(StoreMigration.summary(two).contains("DIFFERS"))
    }

    func testASourceWithATableOrColumnThisHubDoesNotCopyIsRefused() throws {
        _ = try filledSource()
        let db = try SQLiteConnection(path: sqlitePath)
        try db.execute("ALTER TABLE users ADD COLUMN nickname TEXT; CREATE TABLE extra (x INTEGER)")
        db.resetStatements()
        XCTAssertThrowsError(try StoreMigration.migrate(sqlitePath: sqlitePath, postgresURL: schema!.url, now: 1, progress: { _ in })) { error in
            XCTAssertEqual(error as? StoreMigrationError,
                           .sourceTables(["table extra is not copied", "column users.nickname is not copied"]), "\(error)")
            XCTAssertTrue("\(error)".contains("nothing was copied"), "says what happened: \(error)")
        }
        XCTAssertThrowsError(try StoreMigration.verify(sqlitePath: sqlitePath, postgresURL: schema!.url, progress: { _ in }))
    }

    func testSourceDifferencesNameMissingTablesAndColumns() {
        var found = Dictionary(uniqueKeysWithValues: MigrationTable.all.map { ($0.name, $0.columns.map(\.name).filter { $0 != "rowid" }) })
        found["schema_migrations"] = ["version", "applied_at"]
        found["totals"] = ["name", "value"]
        found["sqlite_sequence"] = ["name", "seq"]
        XCTAssertEqual(MigrationTable.sourceDifferences(found), [], "the documented exclusions and SQLite's own tables")
        found["outbox"] = found["outbox"]?.filter { $0 != "last_error" }
        found["idempotency"] = nil
        XCTAssertEqual(MigrationTable.sourceDifferences(found), ["column outbox.last_error is missing", "table idempotency is missing"])
    }

    func testATargetWithDataIsRefusedAndAFailedCopyLeavesTheTargetEmpty() throws {
        let schema = try XCTUnwrap(schema)
        _ = try filledSource()
        _ = try StoreMigration.migrate(sqlitePath: sqlitePath, postgresURL: schema.url, now: 2) { _ in }
        XCTAssertThrowsError(try StoreMigration.migrate(sqlitePath: sqlitePath, postgresURL: schema.url, now: 3) { _ in }) {
            XCTAssertEqual($0 as? StoreMigrationError, .targetNotEmpty(table: "users"))
        }

        // A value PostgreSQL cannot hold (a NUL in an audit entry) fails the copy late, after
        // users and messages went in: the transaction takes them all back.
        let other = try TestPGSchema()
        defer { other.drop() }
        let store = try SQLiteStore(path: sqlitePath, now: 4, messageWording: MessageNotificationText.wording)
        store.recordAudit(actor: "bad\u{0}actor", action: "a", target: "t", ts: 5)
        store.close()
        XCTAssertThrowsError(try StoreMigration.migrate(sqlitePath: sqlitePath, postgresURL: other.url, now: 5) { _ in }) {
            guard case .copyFailed(let table, _)? = $0 as? StoreMigrationError else { return XCTFail("\($0)") }
            XCTAssertEqual(table, "audit_log")
        }
        let db = try other.connect()
        defer { db.close() }
        XCTAssertEqual(try db.query("SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM messages)").int(0, 0), 0)
        XCTAssertEqual(try db.query("SELECT COALESCE(SUM(messages), 0) FROM totals").int(0, 0), 0)
        XCTAssertThrowsError(try StoreMigration.migrate(sqlitePath: dir + "/none.sqlite", postgresURL: other.url, now: 5) { _ in }) {
            XCTAssertEqual($0 as? StoreMigrationError, .sourceMissing(dir + "/none.sqlite"))
        }
    }
}
