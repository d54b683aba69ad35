import XCTest
@testable import Hub

// One rule for node ids, the one the configuration applies: 1 to 64 of A-Za-z0-9._-.
final class NodeIDTests: XCTestCase {
    func testTheRule() {
        for ok in ["a", "node-1", "host.example_2", String(repeating: "x", count: 64)] { XCTAssertTrue(NodeID.isValid(ok), ok) }
        for bad in ["", "nöde", "node 1", "node:1", "a\nb", "١٢", String(repeating: "x", count: 65)] {
            XCTAssertFalse(NodeID.isValid(bad), bad)
        }
    }

    func testTheClusterStateRefusesWhatTheRuleRefuses() throws {
        let loop = try RunningLoop()
        defer { loop.stop() }
        for bad in ["nöde", "١٢", "node:1"] {
            XCTAssertThrowsError(try ClusterState(endpoints: [RedisEndpoint(host: "127.0.0.1", port: 1)], clusterName: "tnone",
                                                  nodeID: bad, loop: loop.loop, loadAssignments: { $0(nil) })) { e in
                XCTAssertEqual(e as? ClusterStateError, .invalidNodeID(bad))
            }
        }
    }
}
