import Core
import Foundation
import Protocol
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

// A listener on port 0 holds the port the kernel chose from the moment it is made. Let go
// before its loops bind, the next port-0 listener (the bridge, another node of a test cluster)
// could be given the same port, and the two would share it through SO_REUSEPORT: a WebSocket
// upgrade answered 404 by the bridge.
final class ListenerPortTests: XCTestCase {
    private struct Answers: HTTPService {
        func handle(_ request: HTTPRequest, on connection: Connection) -> HTTPReply { .respond(.text(.ok, "here")) }
    }

    func testAPortTheKernelChoseIsHeldBeforeAnyLoopBindsIt() throws {
        let listener = try Listener(name: "public", host: "127.0.0.1", port: 0, service: Answers(), tls: nil, limits: EngineLimits())
        XCTAssertThrowsError(try Listener.probe(host: "127.0.0.1", port: listener.port),
                             "port \(listener.port) was free again after the listener was made")
        // Many more port-0 listeners made while it is held: none is given its port.
        let others = try (0..<200).map { _ in
            try Listener(name: "bridge", host: "127.0.0.1", port: 0, service: Answers(), tls: nil, limits: EngineLimits())
        }
        XCTAssertFalse(others.contains { $0.port == listener.port })
        XCTAssertEqual(Set(others.map(\.port)).count, others.count, "every held port distinct")
    }

    func testAConnectionMadeBeforeTheLoopRunsIsServedOnceItDoes() throws {
        let listener = try Listener(name: "public", host: "127.0.0.1", port: 0, service: Answers(), tls: nil, limits: EngineLimits())
        let early = try TestSocket(port: listener.port)
        try early.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let loop = try EventLoop(index: 0, counters: EngineCounters())
        try loop.add(listener)
        loop.start()
        defer {
            loop.execute { $0.beginShutdown(deadlineMs: 0) }
            XCTAssertTrue(loop.waitUntilFinished(deadline: .now() + 5))
        }
        XCTAssertEqual(try early.readHTTPResponse().status, 200)
        let later = try TestSocket(port: listener.port)
        try later.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try later.readHTTPResponse().status, 200)
    }
}
