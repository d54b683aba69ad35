import Core
import Foundation
import XCTest
@testable import Hub

// A connection with silence detection on: idle, it PINGs (a subscribed one too, whose RESP2
// answer is an array) and keeps the round trip; behind a dead route it is dropped and
// reconnects within its bound.
final class RedisSilenceTests: XCTestCase {
    private func options() -> RedisConnection.Options {
        var o = RedisConnection.Options()
        o.silentAfterMs = 600
        o.pingIdleMs = 100
        return o
    }

    func testAnIdleSubscriberPingsAndStaysUp() throws {
        let endpoint = try RedisTestEnv.endpoint()
        let loop = try RunningLoop()
        defer { loop.stop() }
        let sub = try loop.connect(endpoint, name: "t-ping-sub", role: .subscriber(InboundRing.Limits()), options: options())
        defer { loop.close(sub) }
        loop.sync { _ in sub.subscribe([RedisTestEnv.prefix() + "quiet"]) }
        XCTAssertTrue(eventually { loop.syncValue { _ in sub.subscriptionCount } == 1 })
        let before = loop.syncValue { _ in sub.lastPingRoundTripMs }
        Thread.sleep(forTimeInterval: 1.0)
        XCTAssertNotNil(loop.syncValue { _ in sub.lastPingRoundTripMs }, "expected a PING answered while subscribed (was \(String(describing: before)))")
        XCTAssertEqual(loop.syncValue { _ in sub.silentResets }, 0, "an idle subscriber that answers is not silent")
        XCTAssertEqual(loop.syncValue { _ in sub.reconnects }, 0, "expected no reconnect: every pong answered its PING")
        XCTAssertTrue(loop.syncValue { _ in sub.isUp })
    }

    func testASilentConnectionIsDroppedWithinItsBoundAndComesBack() throws {
        let direct = try RedisTestEnv.endpoint()
        let proxy = try FaultProxy(to: direct.port)
        defer { proxy.stop() }
        let loop = try RunningLoop()
        defer { loop.stop() }
        let silent = Locked<[Int64]>([])
        let c = try loop.connect(RedisEndpoint(host: "127.0.0.1", port: proxy.port), name: "t-silent", options: options()) { c in
            c.onSilent = { _, ms in silent.withLock { $0.append(ms) } }
        }
        defer { loop.close(c) }
        XCTAssertTrue(eventually { loop.syncValue { _ in c.lastPingRoundTripMs } != nil }, "expected a PING round trip before the fault")
        let t0 = Date()
        proxy.silenceOpenConnections()
        XCTAssertTrue(eventually(3) { loop.syncValue { _ in c.silentResets } >= 1 }, "expected the silence found")
        let found = Date().timeIntervalSince(t0)
        XCTAssertLessThanOrEqual(found, 1.5, "expected the silence found within PING idle + 600 ms (+ checks), took \(found) s")
        XCTAssertGreaterThanOrEqual(silent.withLock { $0.first } ?? 0, 600)
        XCTAssertTrue(eventually(3) { loop.syncValue { _ in c.isUp } }, "expected a new connection through the proxy")
    }
}
