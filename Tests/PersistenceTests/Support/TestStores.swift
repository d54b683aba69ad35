import Foundation
import XCTest
import Notifications
@testable import Persistence

// Fresh stores for tests: SQLite on a file in a new temporary folder, PostgreSQL in a new
// schema of the server named by MONTROSE_TEST_PG (every connection of the store lives in that
// schema through the conninfo's search_path). `drop()` removes what was made.

/// A PostgreSQL schema made for one test: `url` reaches the server with that schema first on
/// the search_path.
final class TestPGSchema: Sendable {
    let serverURL: String
    let name: String
    var url: String { Self.url(serverURL, schema: name) }

    /// Throws XCTSkip("NEEDS-ENGINE: …") when MONTROSE_TEST_PG is not set.
    init() throws {
        guard let server = ProcessInfo.processInfo.environment["MONTROSE_TEST_PG"], !server.isEmpty else {
            throw XCTSkip("NEEDS-ENGINE: PostgreSQL (set MONTROSE_TEST_PG=postgres://user@127.0.0.1:port/db; .ci/run starts one)")
        }
        serverURL = server
        name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let admin = try PGConnection(url: server)
        defer { admin.close() }
        try admin.execute("CREATE SCHEMA \(name)")
    }

    /// Drops the schema and everything in it (store connections must be closed first).
    func drop() {
        guard let admin = try? PGConnection(url: serverURL) else { return }
        defer { admin.close() }
        try? admin.execute("DROP SCHEMA IF EXISTS \(name) CASCADE")
    }

    /// A connection to the test's schema (for checks the store has no call for).
    func connect(statementTimeout: Double = 30) throws -> PGConnection {
        try PGConnection(url: url, statementTimeout: statementTimeout)
    }

    /// `server` with `options=-csearch_path=<schema>` added to its query, and the schema as
    /// the application_name (so a test can find its own server processes in pg_stat_activity).
    static func url(_ server: String, schema: String) -> String {
        let option = "options=-csearch_path%3D\(schema)&application_name=\(schema)"
        return server + (server.contains("?") ? "&" : "?") + option
    }

    /// Terminates the server processes of this schema's connections (not `except`'s).
    func terminateConnections(except: PGConnection) throws -> Int {
        let r = try except.query("""
            SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
            WHERE application_name = $1 AND pid <> pg_backend_pid()
            """, [name])
        return Int(r.int(0, 0))
    }
}

enum TestStores {
    /// A PostgresStore in a schema of its own; call `schema.drop()` after `store.close()`.
    static func postgres(writers: Int = 2, readers: Int = 2) throws -> (store: PostgresStore, schema: TestPGSchema) {
        let schema = try TestPGSchema()
        do {
            let store = try PostgresStore(url: schema.url, writers: writers, readers: readers, now: 1,
                                          messageWording: MessageNotificationText.wording)
            return (store, schema)
        } catch {
            schema.drop()
            throw error
        }
    }

    /// A SQLiteStore on a file in a new temporary folder; remove `dir` after `store.close()`.
    static func sqlite() throws -> (store: SQLiteStore, dir: String) {
        let dir = NSTemporaryDirectory() + "store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir + "/hub.sqlite", now: 1, messageWording: MessageNotificationText.wording)
        return (store, dir)
    }
}
