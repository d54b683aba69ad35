import Foundation
import XCTest
@testable import Hub

// One loop per core really spreads connections: SO_REUSEPORT hands each loop some.
final class LoopDistributionTests: XCTestCase {
    func testEveryLoopAcceptsSomeOfManyConnections() throws {
        let hub = try TestHub(loops: 4)
        defer { hub.stop() }
        var sockets: [TestSocket] = []
        for _ in 0..<400 { sockets.append(try TestSocket(port: hub.port)) }
        // Each socket proves it is served: a health request answered on it.
        for s in sockets.prefix(20) {
            try s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(try s.readHTTPResponse().status, 200)
        }
        let deadline = Date().addingTimeInterval(5)
        var counts: [Int] = []
        repeat {
            counts = hub.server.loops.map { $0.acceptedTotal.load(ordering: .relaxed) }
            if counts.reduce(0, +) >= 400 { break }
            usleep(20_000)
        } while Date() < deadline
        XCTAssertEqual(counts.reduce(0, +), 400, "every connection was accepted by some loop: \(counts)")
        for (i, n) in counts.enumerated() {
            XCTAssertGreaterThan(n, 20, "loop \(i) accepted only \(n) of 400 connections: \(counts)")
        }
    }
}
