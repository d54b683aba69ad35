import Core
import Foundation
import Protocol
import XCTest
@testable import Hub

// Our Redis client against a real Redis 7: replies in command order under deep pipelining,
// thousands of subscriptions, recovery after the server kills the connection (completions in
// flight fail, the client reconnects), and the subscriber's bounded inbound ring dropping and
// counting under a PUBLISH storm while its loop keeps turning.
final class RedisConnectionTests: XCTestCase {
    func testURLsGiveAddressCredentialsAndARedactedDescription() throws {
        let plain = try RedisEndpoint(url: "redis://127.0.0.1:6380")
        XCTAssertEqual(plain, RedisEndpoint(host: "127.0.0.1", port: 6380))
        XCTAssertEqual(plain.description, "redis://127.0.0.1:6380")
        let secret = try RedisEndpoint(url: "redis://hub:s3cr:et@localhost:6381/2")
        XCTAssertEqual(secret, RedisEndpoint(host: "127.0.0.1", port: 6381, username: "hub", password: "s3cr:et"))
        XCTAssertEqual(secret.address, "127.0.0.1:6381")
        XCTAssertFalse(secret.description.contains("s3cr"), "expected the password kept out of logs: \(secret)")
        XCTAssertEqual(try RedisEndpoint(url: "redis://:pw@127.0.0.1:1").password, "pw")
        for bad in ["http://127.0.0.1:6379", "redis://127.0.0.1", "redis://127.0.0.1:0", "redis://redis.internal:6379", "redis://127.0.0.1:x"] {
            XCTAssertThrowsError(try RedisEndpoint(url: bad), bad)
        }
    }

    func testPingIsAnsweredOnTheConnectionsLoop() throws {
        let endpoint = try RedisTestEnv.endpoint()
        let loop = try RunningLoop()
        defer { loop.stop() }
        let c = try loop.connect(endpoint, name: "t-ping")
        defer { loop.close(c) }
        XCTAssertEqual(try loop.call(c, ["PING"]), .simpleString("PONG"))
        XCTAssertThrowsError(try loop.call(c, ["NOSUCHCOMMAND"])) { e in
            guard case .server(let m)? = e as? RedisError else { return XCTFail("expected a server error, got \(e)") }
            XCTAssertTrue(m.hasPrefix("ERR"), m)
        }
    }

    func testTenThousandPipelinedCommandsAreAnsweredInOrder() throws {
        let endpoint = try RedisTestEnv.endpoint()
        let loop = try RunningLoop()
        defer { loop.stop() }
        let c = try loop.connect(endpoint, name: "t-pipeline")
        defer { loop.close(c) }
        let key = RedisTestEnv.prefix() + "counter"
        let answers = Locked<[Int64]>([])
        let done = DispatchSemaphore(value: 0)
        loop.loop.execute { _ in
            for i in 1...10_000 {
                c.send(["INCR", key]) { r in
                    answers.withLock { $0.append((try? r.get())?.integer ?? -1) }
                    if i == 10_000 { done.signal() }
                }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "expected all 10,000 replies within 10 s")
        XCTAssertEqual(answers.withLock { $0 }, (1...10_000).map(Int64.init), "expected replies 1…10000 in command order")
        _ = try loop.call(c, ["DEL", key])
    }

    func testFiveThousandChannelsSubscribeInBatches() throws {
        let endpoint = try RedisTestEnv.endpoint()
        let loop = try RunningLoop()
        defer { loop.stop() }
        let prefix = RedisTestEnv.prefix()
        let confirmed = Locked<Set<String>>([])
        let sub = try loop.connect(endpoint, name: "t-sub5k", role: .subscriber(InboundRing.Limits())) { c in
            c.onSubscription = { _, kind, channel in
                if kind == "subscribe" { confirmed.withLock { _ = $0.insert(channel) } }
            }
        }
        let cmd = try loop.connect(endpoint, name: "t-sub5k-cmd")
        defer { loop.close(sub); loop.close(cmd) }
        let channels = (0..<5_000).map { "\(prefix)c\($0)" }
        loop.sync { _ in
            for start in stride(from: 0, to: channels.count, by: 1_000) {
                sub.subscribe(Array(channels[start..<min(start + 1_000, channels.count)]))
            }
        }
        XCTAssertTrue(eventually(10) { confirmed.withLock { $0.count } == 5_000 },
                      "expected 5,000 confirmations, got \(confirmed.withLock { $0.count })")
        let listed = try loop.call(cmd, ["PUBSUB", "CHANNELS", prefix + "*"])
        XCTAssertEqual(listed.elements?.count, 5_000, "expected Redis to list all 5,000 channels")
    }

    func testAKilledConnectionFailsWhatWasInFlightAndComesBack() throws {
        let endpoint = try RedisTestEnv.endpoint()
        let loop = try RunningLoop()
        defer { loop.stop() }
        let name = "t-kill-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let ups = Locked(0), downs = Locked(0)
        let victim = try loop.connect(endpoint, name: name) { c in
            c.onUp = { _ in ups.withLock { $0 += 1 } }
            c.onDown = { _ in downs.withLock { $0 += 1 } }
        }
        let killer = try loop.connect(endpoint, name: name + "-killer")
        defer { loop.close(victim); loop.close(killer) }
        // A command that stays in flight until the kill.
        let blocked = Locked<Result<RESPValue, RedisError>?>(nil)
        loop.sync { _ in
            victim.send(["BLPOP", RedisTestEnv.prefix() + "never", "10"]) { r in blocked.withLock { $0 = r } }
        }
        Thread.sleep(forTimeInterval: 0.05)
        let list = try loop.call(killer, ["CLIENT", "LIST"]).string ?? ""
        guard let line = list.split(separator: "\n").first(where: { $0.contains(" name=\(name) ") }),
              let idField = line.split(separator: " ").first(where: { $0.hasPrefix("id=") }) else {
            return XCTFail("expected CLIENT LIST to show a client named \(name)")
        }
        XCTAssertEqual(try loop.call(killer, ["CLIENT", "KILL", "ID", String(idField.dropFirst(3))]), .integer(1))
        XCTAssertTrue(eventually { blocked.withLock { $0 } != nil }, "expected the in-flight BLPOP to be answered")
        XCTAssertEqual(blocked.withLock { $0 }, .failure(.connectionLost),
                       "expected the in-flight command to fail with connectionLost")
        XCTAssertTrue(eventually { downs.withLock { $0 } == 1 && ups.withLock { $0 } == 2 },
                      "expected one down and a second up, got \(downs.withLock { $0 }) and \(ups.withLock { $0 })")
        XCTAssertEqual(try loop.call(victim, ["PING"]), .simpleString("PONG"), "expected the reconnected client to work")
        XCTAssertEqual(loop.syncValue { _ in victim.reconnects }, 1)
    }

    func testAnUnreachableInstanceIsRetriedWithBackoffAndCommandsFailAtOnce() throws {
        let loop = try RunningLoop()
        defer { loop.stop() }
        // Port 1 on loopback: nothing listens, the connect is refused at once.
        let c = RedisConnection(endpoint: RedisEndpoint(host: "127.0.0.1", port: 1), name: "t-refused",
                                role: .commands, loop: loop.loop)
        loop.sync { _ in c.start() }
        Thread.sleep(forTimeInterval: 0.6)
        let attempts = loop.syncValue { _ in c.reconnects }
        // 50, 100, 200, 400 ms ceilings, each jittered over its upper half: 2 to 5 retries in 600 ms.
        XCTAssertTrue((2...6).contains(attempts), "expected backoff from 50 ms doubling, got \(attempts) retries in 600 ms")
        let answer = Locked<Result<RESPValue, RedisError>?>(nil)
        loop.sync { _ in c.send(["PING"]) { r in answer.withLock { $0 = r } } }
        XCTAssertTrue(eventually(2) { answer.withLock { $0 } != nil }, "expected the command to fail, not wait")
        let failure = answer.withLock { $0 }
        XCTAssertTrue(failure == .failure(.notConnected) || failure == .failure(.connectionLost), "got \(String(describing: failure))")
        loop.close(c)
        XCTAssertEqual(loop.syncValue { _ in c.isUp }, false)
    }

    func testAHostThatIsNotAnIPv4AddressIsRefusedBeforeAnySocket() {
        for host in ["redis.internal", "300.1.1.1", ""] {
            guard case .failure(let e) = Socket.connect(ipv4: host, port: 6379, configure: { _ in XCTFail("no socket for \(host)") }) else {
                return XCTFail("expected \(host) refused, not connected to some address")
            }
            XCTAssertEqual(e.errno, EINVAL)
        }
    }

    func testOutputPilingUpForASilentRedisIsRefusedPastItsCap() throws {
        let direct = try RedisTestEnv.endpoint()
        let proxy = try FaultProxy(to: direct.port)
        defer { proxy.stop() }
        let loop = try RunningLoop()
        defer { loop.stop() }
        var options = RedisConnection.Options()
        options.maxQueuedOutputBytes = 256 * 1024
        let c = try loop.connect(RedisEndpoint(host: "127.0.0.1", port: proxy.port), name: "t-backlog", options: options)
        defer { loop.close(c) }
        proxy.mode = .blackhole
        let refused = Locked(0)
        let payload = String(repeating: "x", count: 1_000)
        // Redis behind the proxy never answers: the accepted commands stay in flight (their
        // completions wait for a reply or the connection's end), the rest are refused at once.
        loop.sync { _ in
            for _ in 0..<2_000 { c.send(["SET", "k", payload]) { r in if r == .failure(.backlogFull) { refused.withLock { $0 += 1 } } } }
        }
        // Sent within one turn: nothing left for the kernel yet, so the cap applies.
        XCTAssertGreaterThan(refused.withLock { $0 }, 0, "expected commands past 256 KiB of queued output to be refused")
        XCTAssertEqual(loop.syncValue { _ in c.backlogRefusals }, refused.withLock { $0 })
    }

    func testTheSubscriptionCountIsRedisOwnAndZeroAfterALoss() throws {
        let endpoint = try RedisTestEnv.endpoint()
        let loop = try RunningLoop()
        defer { loop.stop() }
        let prefix = RedisTestEnv.prefix()
        let sub = try loop.connect(endpoint, name: "t-count-sub", role: .subscriber(InboundRing.Limits()))
        defer { loop.close(sub) }
        loop.sync { _ in sub.subscribe([prefix + "a", prefix + "b", prefix + "c"]) }
        XCTAssertTrue(eventually { loop.syncValue { _ in sub.subscriptionCount } == 3 }, "expected Redis's count of 3")
        loop.sync { _ in sub.unsubscribe([prefix + "b"]) }
        XCTAssertTrue(eventually { loop.syncValue { _ in sub.subscriptionCount } == 2 }, "expected 2 after one unsubscribe")
        loop.sync { _ in sub.reconnect() }
        XCTAssertEqual(loop.syncValue { _ in sub.subscriptionCount }, 0, "a lost connection holds no subscription")
    }

    func testATinyRingDropsAndCountsUnderAPublishStormAndTheLoopKeepsTurning() throws {
        let endpoint = try RedisTestEnv.endpoint()
        let subLoop = try RunningLoop(index: 0)
        let pubLoop = try RunningLoop(index: 1)
        defer { subLoop.stop(); pubLoop.stop() }
        let channel = RedisTestEnv.prefix() + "storm"
        let received = Locked(0)
        let subscribed = DispatchSemaphore(value: 0)
        let sub = try subLoop.connect(endpoint, name: "t-storm-sub",
                                      role: .subscriber(InboundRing.Limits(maxMessages: 10, maxBytes: 1 << 20))) { c in
            c.onMessage = { _, _ in received.withLock { $0 += 1 } }
            c.onSubscription = { _, kind, _ in if kind == "subscribe" { subscribed.signal() } }
        }
        let pub = try pubLoop.connect(endpoint, name: "t-storm-pub")
        defer { subLoop.close(sub); pubLoop.close(pub) }
        subLoop.sync { _ in sub.subscribe([channel]) }
        XCTAssertEqual(subscribed.wait(timeout: .now() + 5), .success)
        // A ticker on the subscriber's loop: the longest gap between ticks is how long it stalled.
        let ticks = Locked<(last: Int64, worstGapMs: Int64)>((monotonicMillis(), 0))
        let ticking = Locked(true)
        @Sendable func tick(_ loop: EventLoop) {
            let now = monotonicMillis()
            ticks.withLock { $0 = (now, max($0.worstGapMs, now - $0.last)) }
            if ticking.withLock({ $0 }) { loop.after(ms: 10, tick) }
        }
        subLoop.sync { loop in loop.after(ms: 10, tick) }
        let total = 30_000
        let payload = String(repeating: "p", count: 100)
        let published = DispatchSemaphore(value: 0)
        pubLoop.loop.execute { _ in
            for i in 1...total {
                pub.send(["PUBLISH", channel, payload]) { _ in if i == total { published.signal() } }
            }
        }
        XCTAssertEqual(published.wait(timeout: .now() + 20), .success, "expected the storm to be published within 20 s")
        let dropped = { subLoop.syncValue { _ in sub.droppedTotal } }
        XCTAssertTrue(eventually(10) { received.withLock { $0 } + dropped() == total },
                      "expected every message received or counted as dropped: \(received.withLock { $0 }) + \(dropped()) of \(total)")
        ticking.withLock { $0 = false }
        XCTAssertGreaterThan(dropped(), 0, "expected a ring of 10 to drop under the storm")
        XCTAssertEqual(subLoop.syncValue { _ in sub.takeDroppedChannels() }, [channel], "expected the channel recorded as dirty")
        let worst = ticks.withLock { $0.worstGapMs }
        XCTAssertLessThan(worst, 500, "expected the subscriber's loop to keep turning (worst gap \(worst) ms)")
        XCTAssertTrue(subLoop.syncValue { _ in sub.isUp }, "expected the subscriber to stay connected")
    }
}

extension RunningLoop {
    /// Runs `body` on the loop and returns its value (waits at most 5 s).
    func syncValue<T>(_ body: @escaping (EventLoop) -> T) -> T {
        let box = Locked<T?>(nil)
        sync { loop in
            let v = body(loop)
            box.withLock { $0 = v }
        }
        return box.withLock { $0 }!
    }
}
