import Foundation
import Glibc
import XCTest
@testable import Hub
@testable import Persistence

// `montrose-hub migrate` as an operator runs it: the real binary, a hub's own SQLite file (the
// development seed plus a message), a fresh PostgreSQL schema; exit codes and output.
final class MigrateCommandTests: XCTestCase {
    func testMigrateCopiesAStoppedHubsStoreAndVerifyNamesATableThatDiffers() throws {
        let db = try TestDatabase()
        defer { db.drop() }
        let data = TestDirectory.make("migrate")
        let sqlite = "sqlite:\(data)/hub.sqlite"

        let hub = try HubProcess(["--port", "0", "--bridge-port", "0", "--data", data,
                                  "--jwt-secret", TestHub.secret, "--bridge-key", TestHub.bridgeKey])
        guard let line = hub.waitForLine(containing: "public listening"), let port = HubProcess.port(in: line) else {
            hub.signal(SIGKILL)
            throw TestError("hub did not start: \(hub.outputLines) \(hub.standardError)")
        }
        let client = try ChatClient(port: port, token: TestHub.token("ann", .client))
        _ = try client.result("send", ["channel": "conv:website:ann", "text": "moved \\ ü", "client_msg_id": "m1"])

        let whileRunning = try HubProcess(["migrate", "--from", sqlite, "--to", db.url])
        XCTAssertEqual(whileRunning.waitForExit(timeout: 30), 2)
        XCTAssertTrue(whileRunning.standardError.contains("stop the hub"), whileRunning.standardError)

        hub.signal(SIGTERM)
        XCTAssertEqual(hub.waitForExit(), 0)

        let migrate = try HubProcess(["migrate", "--from", sqlite, "--to", db.url])
        XCTAssertEqual(migrate.waitForExit(timeout: 60), 0, migrate.standardError)
        XCTAssertNotNil(migrate.waitForLine(containing: "messages: "), "\(migrate.outputLines)")
        XCTAssertNotNil(migrate.waitForLine(containing: "every table matches"), "\(migrate.outputLines)")
        XCTAssertTrue(migrate.outputLines.contains { $0.hasPrefix("store_meta") && $0.hasSuffix("ok") }, "\(migrate.outputLines)")

        let again = try HubProcess(["migrate", "--from", sqlite, "--to", db.url])
        XCTAssertEqual(again.waitForExit(timeout: 30), 2)
        XCTAssertTrue(again.standardError.contains("already holds data"), again.standardError)

        let verify = try HubProcess(["migrate", "--from", sqlite, "--to", db.url, "--verify-only"])
        XCTAssertEqual(verify.waitForExit(timeout: 30), 0, verify.standardError)
        XCTAssertNotNil(verify.waitForLine(containing: "every table matches"), "\(verify.outputLines)")

        let pg = try PGConnection(url: db.url)
        try pg.execute("UPDATE conversations SET last_seq = last_seq + 1")
        pg.close()
        let changed = try HubProcess(["migrate", "--from", sqlite, "--to", db.url, "--verify-only"])
        XCTAssertEqual(changed.waitForExit(timeout: 30), 1, changed.standardError)
        XCTAssertNotNil(changed.waitForLine(containing: "table conversations differs"), "\(changed.outputLines)")

        let wrong = try HubProcess(["migrate", "--from", db.url, "--to", sqlite])
        XCTAssertEqual(wrong.waitForExit(), 2)
        XCTAssertTrue(wrong.standardError.contains("--from sqlite:PATH"), wrong.standardError)
    }

    func testMigrateFlagsNameBothStores() throws {
        guard case .migrate(let m) = try Configuration.command(["migrate", "--from=sqlite:/x/hub.sqlite", "--to", "postgres://h/db", "--verify-only"],
                                                               environment: ["MONTROSE_STORE": "postgres://elsewhere/db"]) else {
            return XCTFail("a migrate command")
        }
        XCTAssertEqual(m, MigrateCommand(sqlitePath: "/x/hub.sqlite", postgresURL: "postgres://h/db", verifyOnly: true))
        for args in [["migrate", "--to", "postgres://h/db"], ["migrate", "--from", "sqlite:/x", "--to", "sqlite:/y"],
                     ["migrate", "--from", "sqlite:/x", "--to", "postgres://h/db", "--data", "d"], ["migrate", "--from"],
                     ["migrate", "--from", "sqlite:/x", "--from", "sqlite:/y", "--to", "postgres://h/db"]] {
            XCTAssertThrowsError(try Configuration.command(args, environment: [:]), "\(args)")
        }
    }
}
