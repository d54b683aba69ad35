import Foundation
import XCTest
@testable import Persistence
import Protocol

// PGConnection against a real server: parameters and results, typed errors with SQLSTATE,
// a statement deadline that ends in a closed connection instead of a stuck thread.
final class PGConnectionTests: XCTestCase {
    var schema: TestPGSchema!

    override func setUpWithError() throws { schema = try TestPGSchema() }
    override func tearDown() { schema?.drop() }

    func testParametersAndResultsRoundTrip() throws {
        let db = try schema.connect()
        defer { db.close() }
        try db.execute("CREATE TABLE t (a bigint, b text, c boolean); INSERT INTO t VALUES (1, 'x', true)")
        let r = try db.query("SELECT $1::bigint + 1, $2::text, $3::text IS NULL, NULL::bigint, NULL::text, c FROM t",
                             ["41", "it's \"quoted\" 😀", nil])
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(r.int(0, 0), 42)
        XCTAssertEqual(r.text(0, 1), "it's \"quoted\" 😀")
        XCTAssertTrue(r.bool(0, 2), "nil is NULL")
        XCTAssertNil(r.optionalInt(0, 3))
        XCTAssertEqual(r.int(0, 3), 0, "NULL reads as 0")
        XCTAssertNil(r.optionalText(0, 4))
        XCTAssertEqual(r.text(0, 4), "", "NULL reads as empty")
        XCTAssertTrue(r.bool(0, 5))
        XCTAssertEqual(try db.query("SELECT 1 WHERE false").count, 0)
    }

    func testUnreadLocksTheTransactionHoldsCostNoRoundTrip() throws {
        let db = try schema.connect()
        try db.execute("BEGIN")
        try PostgresStore.lockUnread(db, users: ["ann", "bob"])
        XCTAssertEqual(db.unreadLocked, ["ann", "bob"])
        db.close()
        XCTAssertNoThrow(try PostgresStore.lockUnread(db, users: ["bob", "ann"]), "held already: nothing is sent")
        XCTAssertThrowsError(try PostgresStore.lockUnread(db, users: ["ann", "cy"]), "cy is not held: sent, on a closed connection")
    }

    func testTextArrayLiteralKeepsEveryCharacter() throws {
        let db = try schema.connect()
        defer { db.close() }
        let values = ["plain", "with,comma", "with \"quote\"", "back\\slash", "{braces}", "", "NULL", " spaced ", "ü😀"]
        let r = try db.query("SELECT v FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i) ORDER BY i", [PGConnection.textArray(values)])
        XCTAssertEqual((0..<r.count).map { r.text($0, 0) }, values)
        XCTAssertEqual(try db.query("SELECT cardinality($1::text[])", [PGConnection.textArray([])]).int(0, 0), 0)
    }

    func testStatementErrorsCarryTheirSQLStateAndTheConnectionGoesOn() throws {
        let db = try schema.connect()
        defer { db.close() }
        XCTAssertThrowsError(try db.query("SELECT * FROM no_such_table")) { error in
            let e = error as? PGError
            XCTAssertEqual(e?.sqlState, "42P01")
            XCTAssertEqual(e?.kind, .statement)
            XCTAssertFalse(e?.isConnectionLost ?? true)
        }
        try db.execute("CREATE TABLE u (k text PRIMARY KEY); INSERT INTO u VALUES ('a')")
        XCTAssertThrowsError(try db.query("INSERT INTO u VALUES ($1)", ["a"])) { error in
            XCTAssertEqual((error as? PGError)?.sqlState, "23505")
            XCTAssertTrue((error as? PGError)?.isConstraintViolation ?? false)
        }
        XCTAssertThrowsError(try db.query("SELECT $1::text", ["nul\u{0}inside"])) { error in
            XCTAssertEqual((error as? PGError)?.sqlState, "22021", "refused before sending, never truncated")
        }
        XCTAssertEqual(try db.query("SELECT 7").int(0, 0), 7, "the connection is usable after statement errors")
        XCTAssertTrue(db.isConnected)
    }

    func testAStatementPastItsDeadlineClosesTheConnectionInTime() throws {
        let db = try schema.connect(statementTimeout: 0.5)
        let started = Date()
        XCTAssertThrowsError(try db.query("SELECT pg_sleep(5)")) { error in
            XCTAssertEqual((error as? PGError)?.kind, .timeout)
            XCTAssertTrue((error as? PGError)?.isConnectionLost ?? false)
        }
        let took = Date().timeIntervalSince(started)
        XCTAssertLessThan(took, 2, "the deadline holds (\(took) s)")
        XCTAssertFalse(db.isConnected, "closed after the deadline")
        XCTAssertThrowsError(try db.query("SELECT 1")) { XCTAssertEqual(($0 as? PGError)?.kind, .connectionLost) }
    }

    func testATerminatedServerProcessIsALostConnection() throws {
        let db = try schema.connect()
        let admin = try PGConnection(url: schema.serverURL)
        defer { admin.close() }
        _ = try admin.query("SELECT pg_terminate_backend($1::integer)", ["\(db.backendPID)"])
        XCTAssertThrowsError(try db.query("SELECT 1")) { error in
            XCTAssertTrue((error as? PGError)?.isConnectionLost ?? false, "\(error)")
        }
        XCTAssertFalse(db.isConnected)
    }

    func testAnUnreachableServerFailsWithinTheConnectTimeout() throws {
        let started = Date()
        XCTAssertThrowsError(try PGConnection(url: "postgres://hub@127.0.0.1:1/postgres", connectTimeout: 2)) { error in
            XCTAssertTrue((error as? PGError)?.isConnectionLost ?? false, "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }
}

// The helpers other test classes make their stores with.
final class TestStoresTests: XCTestCase {
    func testAPostgresStoreLivesInItsOwnSchemaUntilDropped() throws {
        let (store, schema) = try TestStores.postgres(writers: 1, readers: 1)
        let sent = waitForStore { store.appendMessage(NewMessage(conversation: ConversationKey(service: "website", clientId: "ann"),
                                                                 sender: UserRecord(id: "ann", role: "client", name: "Ann"),
                                                                 text: "hi", clientMsgId: nil, ts: 1), completion: $0) }
        XCTAssertEqual(try sent.get().message.seq, 1)
        store.close()
        let admin = try PGConnection(url: schema.serverURL)
        defer { admin.close() }
        XCTAssertThrowsError(try admin.query("SELECT count(*) FROM messages"), "not on the default search_path")
        XCTAssertEqual(try admin.query("SELECT count(*) FROM \(schema.name).messages").int(0, 0), 1, "in the test's schema")
        schema.drop()
        XCTAssertEqual(try admin.query("SELECT count(*) FROM pg_namespace WHERE nspname = $1", [schema.name]).int(0, 0), 0, "dropped")
    }

    func testASQLiteStoreLivesInItsOwnFolder() throws {
        let (store, dir) = try TestStores.sqlite()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(try waitForStore { store.lastSeq(ConversationKey(service: "website", clientId: "ann"), completion: $0) }.get(), 0)
        store.close()
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/hub.sqlite"))
    }
}
