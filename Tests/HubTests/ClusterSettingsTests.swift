import XCTest
@testable import Hub

// The flags that choose one node or several: what they accept, what they refuse and how the
// refusal reads, and that no password reaches a message.
final class ClusterSettingsTests: XCTestCase {
    private func parse(_ args: [String], env: [String: String] = [:]) throws -> Configuration {
        try Configuration.parse(args, environment: env)
    }
    private func refusal(_ args: [String], env: [String: String] = [:]) -> String {
        do { _ = try Configuration.parse(args, environment: env); return "" } catch { return error.description }
    }

    func testDurabilityIsFullUnlessNormalIsAskedForOnSQLite() throws {
        XCTAssertEqual(try parse([]).durability, .full)
        XCTAssertEqual(try parse(["--durability", "normal"]).durability, .normal)
        XCTAssertEqual(try parse([], env: ["MONTROSE_DURABILITY": "normal"]).durability, .normal)
        XCTAssertEqual(refusal(["--durability", "fast"]), "--durability must be full or normal")
        XCTAssertTrue(refusal(["--store", "postgres://h@127.0.0.1/db", "--durability", "normal"]).contains("is for the SQLite store"))
        XCTAssertEqual(try parse(["--store", "postgres://h@127.0.0.1/db", "--durability", "full"]).durability, .full)
    }

    func testTheDefaultIsOneNodeOnSQLite() throws {
        let c = try parse([])
        XCTAssertNil(c.store)
        XCTAssertEqual(c.brokers, [])
        XCTAssertEqual(c.clusterName, "montrose")
        XCTAssertTrue(c.nodeID.range(of: #"^[A-Za-z0-9._-]+-[0-9a-f]{6}$"#, options: .regularExpression) != nil, c.nodeID)
        XCTAssertNotEqual(try parse([]).nodeID, c.nodeID, "a generated node id differs on every start")
    }

    func testStoreBrokerAndNodeFlags() throws {
        let c = try parse(["--store", "postgres://hub:s3cret@10.0.0.5:5432/montrose", "--broker", "redis://10.0.0.6:6379",
                           "--broker", "redis://:pw@10.0.0.7:6380/", "--node-id", "web-1", "--cluster-name", "acme.prod",
                           "--pg-writers", "3"])
        XCTAssertEqual(c.store, .postgres(url: "postgres://hub:s3cret@10.0.0.5:5432/montrose"))
        XCTAssertEqual(c.store?.description, "postgres://hub:***@10.0.0.5:5432/montrose")
        XCTAssertEqual(c.brokers, [RedisEndpoint(host: "10.0.0.6", port: 6379),
                                   RedisEndpoint(host: "10.0.0.7", port: 6380, password: "pw")])
        XCTAssertEqual(c.brokers.map(\.description), ["redis://10.0.0.6:6379", "redis://***@10.0.0.7:6380"])
        XCTAssertEqual(c.nodeID, "web-1")
        XCTAssertEqual(c.clusterName, "acme.prod")
        XCTAssertEqual(c.pgWriters, 3)
        XCTAssertEqual(try parse(["--store", "sqlite:/tmp/x.sqlite"]).store, .sqlite(path: "/tmp/x.sqlite"))
        // The environment takes a comma-separated list of brokers, and flags replace it.
        let env = ["MONTROSE_STORE": "postgresql://h/db", "MONTROSE_BROKER": "redis://10.0.0.1:1,redis://10.0.0.2:2"]
        XCTAssertEqual(try parse([], env: env).brokers.map(\.host), ["10.0.0.1", "10.0.0.2"])
        XCTAssertEqual(try parse(["--broker", "redis://localhost:3"], env: env).brokers.map(\.host), ["127.0.0.1"])
        XCTAssertEqual(try parse(["--broker", "local"]).brokers, [])
    }

    func testRefusalsSayWhatIsWrongAndNeverShowAPassword() {
        XCTAssertTrue(refusal(["--store", "mysql://root:hunter2@db/x"]).contains("expects sqlite:PATH or postgres://"))
        XCTAssertFalse(refusal(["--store", "mysql://root:hunter2@db/x"]).contains("hunter2"))
        XCTAssertTrue(refusal(["--store", "sqlite:"]).contains("needs a file path"))
        XCTAssertTrue(refusal(["--broker", "redis://127.0.0.1:6379"]).contains("give --store postgres://"),
                      "a Redis broker beside one node's SQLite file is refused")
        XCTAssertTrue(refusal(["--store", "postgres://h/db", "--broker", "redis://127.0.0.1:6379/2"]).contains("--cluster-name"))
        XCTAssertTrue(refusal(["--store", "postgres://h/db", "--broker", "redis://127.0.0.1"]).contains("redis://[:PASSWORD@]HOST:PORT"))
        XCTAssertTrue(refusal(["--store", "postgres://h/db", "--broker", "redis://redis.internal:6379"]).contains("IPv4"),
                      "a host name would need a blocking lookup on a loop thread")
        XCTAssertFalse(refusal(["--store", "postgres://h/db", "--broker", "redis://:hunter2@127.0.0.1"]).contains("hunter2"))
        XCTAssertTrue(refusal(["--store", "postgres://h/db", "--broker", "local", "--broker", "redis://127.0.0.1:1"]).contains("do not go together"))
        XCTAssertTrue(refusal(["--store", "postgres://h/db", "--broker", "redis://127.0.0.1:1", "--broker", "redis://localhost:1"]).contains("same Redis twice"))
        XCTAssertTrue(refusal(["--node-id", "a b"]).contains("letters, digits"))
        XCTAssertTrue(refusal(["--node-id", String(repeating: "n", count: 65)]).contains("1 to 64"))
        XCTAssertTrue(refusal(["--cluster-name", "x:y"]).contains("letters, digits"))
        XCTAssertTrue(refusal(["--pg-writers", "0"]).contains("from 1 to 32"))
    }
}

extension ClusterSettingsTests {
    func testNoSecretReachesAMessageWhereverTheURLCarriesIt() {
        XCTAssertFalse(refusal(["--store", "postgres://h/db", "--broker", "redis://hunter2@127.0.0.1"]).contains("hunter2"),
                       "redis://PASSWORD@host: all of the user info is the secret")
        XCTAssertEqual(StoreLocation.postgres(url: "postgres://hub@h/db?sslmode=require&password=hunter2").description,
                       "postgres://hub@h/db?sslmode=require&password=***")
        let slashInPassword = try? parse(["--store", "postgres://h/db", "--broker", "redis://:pa/ss@127.0.0.1:1"])
        XCTAssertEqual(slashInPassword?.brokers.first?.password, "pa/ss", "a slash in a password is part of the password")
        XCTAssertEqual(slashInPassword?.brokers.first?.address, "127.0.0.1:1")
        XCTAssertTrue(refusal(["--store", "postgresql://"]).contains("needs a host"))
        XCTAssertTrue(refusal(["--pg-writers", "4"]).contains("for a PostgreSQL store"), "not silently ignored on SQLite")
    }
}
