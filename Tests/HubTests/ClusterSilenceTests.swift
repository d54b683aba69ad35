import Foundation
import Glibc
import XCTest
import Core
import Protocol
@testable import Hub

// A node whose every open connection to Redis goes silent (a dead route: no reset, no reply):
// the broker's probe replaces its own connections, and the cluster state notices its own
// silence too (no heartbeat reply, no echo of its probe) and reopens them, so the node's users
// are present again for the other nodes instead of staying reaped.
final class ClusterSilenceTests: XCTestCase {
    func testAClusterStateConnectionMadeSilentIsReopenedAndItsUsersComeBack() throws {
        let cluster = try ClusterProcesses()
        defer { cluster.tearDown() }
        let redis = try RedisEndpoint(url: ClusterProcesses.environmentBrokers[0])
        let proxy = try FaultProxy(to: redis.port)
        defer { proxy.stop() }
        let a = try cluster.start("a", brokers: [ClusterProcesses.environmentBrokers[0]])
        let b = try cluster.start("b", brokers: ["redis://127.0.0.1:\(proxy.port)"])
        let bridge = BridgeClient(port: a.bridge)
        try bridge.user("ann", "client")
        let channel = "conv:website:ann"
        let ann = try ChatClient(port: b.port, token: TestHub.token("ann", .client))
        _ = try ann.result("subscribe", ["channel": .string(channel)])
        let root = try ChatClient(port: a.port, token: TestHub.token("root", .admin))
        _ = try root.result("subscribe", ["channel": .string(channel)])
        func online() throws -> [String] {
            (try root.result("presence", ["channel": .string(channel)])["online"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }.sorted()
        }
        XCTAssertTrue(eventually(5) { (try? online())?.contains("ann") == true }, "before")
        let t0 = Date()
        proxy.silenceOpenConnections()
        // The broker's probe replaces its own connections; the cluster state's stay silent.
        XCTAssertTrue(eventually(5) { proxy.accepted(since: t0).count >= 2 })
        // The state's connections are reopened too (four connections in all), within a few
        // heartbeats, whether or not the janitor on a reaped b meanwhile.
        XCTAssertTrue(eventually(12) { proxy.accepted(since: t0).count >= 4 },
                      "the cluster state reopened its silent connections: \(proxy.accepted(since: t0).count) new")
        let reopened = Date().timeIntervalSince(t0)
        let back = eventually(20) { (try? online())?.contains("ann") == true }
        XCTAssertTrue(back, "ann, on b, is present again on a: \((try? online()) ?? [])")
        print("cluster fault: silent state connections reopened \(String(format: "%.1f", reopened)) s after the route died; ann present on a again after \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
        b.process.signal(SIGKILL)
        XCTAssertTrue(b.process.standardError.contains("cluster_redis_silent"), "b said which connection it found silent")
    }
}
