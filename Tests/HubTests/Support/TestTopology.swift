import Foundation
import XCTest
@testable import Hub
@testable import Persistence

/// What the in-process test hubs run on, from MONTROSE_TEST_TOPOLOGY:
/// - `single` (the default): one node, SQLite in a temporary folder, the in-process broker;
/// - `postgres`: one node on PostgreSQL (MONTROSE_TEST_PG), the in-process broker;
/// - `cluster` / `cluster3`: two or three nodes on PostgreSQL and Redis (MONTROSE_TEST_REDIS,
///   and MONTROSE_TEST_REDIS2 as a second shard when set).
/// `.ci/run` runs the chat, notification and bridge suites once per topology: the same
/// assertions whatever the hub runs on.
enum TestTopology {
    case single
    case postgres
    case cluster(nodes: Int)

    static var current: TestTopology {
        switch ProcessInfo.processInfo.environment["MONTROSE_TEST_TOPOLOGY"] ?? "single" {
        case "postgres": return .postgres
        case "cluster": return .cluster(nodes: 2)
        case "cluster3": return .cluster(nodes: 3)
        default: return .single
        }
    }

    var nodes: Int {
        if case .cluster(let n) = self { return n }
        return 1
    }

    var usesPostgres: Bool {
        if case .single = self { return false }
        return true
    }

    /// The Redis instances of the test cluster, in the same order on every node.
    static func redis() throws -> [RedisEndpoint] {
        let env = ProcessInfo.processInfo.environment
        guard let first = env["MONTROSE_TEST_REDIS"], !first.isEmpty else {
            throw XCTSkip("NEEDS-ENGINE: Redis (set MONTROSE_TEST_REDIS=redis://127.0.0.1:port; .ci/run starts one)")
        }
        return try [first, env["MONTROSE_TEST_REDIS2"]].compactMap { $0 }.filter { !$0.isEmpty }.map { try RedisEndpoint(url: $0) }
    }
}

/// A PostgreSQL schema made for one test hub (every node of it): its connections find their
/// tables there through the URL's search_path. Dropped when the hub stops.
final class TestDatabase: Sendable {
    let serverURL: String
    let name: String
    var url: String {
        serverURL + (serverURL.contains("?") ? "&" : "?") + "options=-csearch_path%3D\(name)&application_name=\(name)"
    }

    init() throws {
        guard let server = ProcessInfo.processInfo.environment["MONTROSE_TEST_PG"], !server.isEmpty else {
            throw XCTSkip("NEEDS-ENGINE: PostgreSQL (set MONTROSE_TEST_PG=postgres://user@127.0.0.1:port/db; .ci/run starts one)")
        }
        serverURL = server
        name = "h_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
        let admin = try PGConnection(url: server)
        defer { admin.close() }
        try admin.execute("CREATE SCHEMA \(name)")
    }

    func drop() {
        guard let admin = try? PGConnection(url: serverURL) else { return }
        defer { admin.close() }
        try? admin.execute("DROP SCHEMA IF EXISTS \(name) CASCADE")
    }
}
