import Core
import Foundation
import Protocol
import XCTest
@testable import Hub

// What the Redis tests share: the instances CI starts (MONTROSE_TEST_REDIS, _REDIS2), a prefix
// per test so tests sharing an instance never see each other's keys or channels, and calls
// that run on a loop and wait for their answer with a deadline.
enum RedisTestEnv {
    /// The instance named by `variable`, or a skip whose message CI counts as a failure.
    static func endpoint(_ variable: String = "MONTROSE_TEST_REDIS") throws -> RedisEndpoint {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw XCTSkip("NEEDS-ENGINE: \(variable) is not set (source /tmp/engines/engines.env or run .ci/run)")
        }
        return try RedisEndpoint(url: url)
    }

    /// A fresh key/channel prefix: `t<random hex>:`.
    static func prefix() -> String {
        "t\(String(UInt64.random(in: 0...UInt64.max), radix: 16)):"
    }
}

extension RunningLoop {
    /// Runs `args` on `connection` (on this loop) and waits up to `seconds` for the reply.
    func call(_ connection: RedisConnection, _ args: [String], seconds: Double = 5) throws -> RESPValue {
        let result = Locked<Result<RESPValue, RedisError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        loop.execute { _ in
            connection.send(args) { r in
                result.withLock { $0 = r }
                done.signal()
            }
        }
        guard done.wait(timeout: .now() + seconds) == .success, let r = result.withLock({ $0 }) else {
            XCTFail("no reply to \(args.first ?? "") within \(seconds) s")
            throw RedisError.connectTimeout
        }
        return try r.get()
    }

    /// A started connection, once it is up (at most 5 s).
    func connect(_ endpoint: RedisEndpoint, name: String, role: RedisConnection.Role = .commands,
                 options: RedisConnection.Options = RedisConnection.Options(),
                 configure: @escaping (RedisConnection) -> Void = { _ in }) throws -> RedisConnection {
        let c = RedisConnection(endpoint: endpoint, name: name, role: role, loop: loop, options: options)
        let up = DispatchSemaphore(value: 0)
        let box = UncheckedBox(configure)
        loop.execute { _ in
            box.value(c)
            let owner = c.onUp
            c.onUp = { conn in
                owner?(conn)
                up.signal()
            }
            c.start()
        }
        guard up.wait(timeout: .now() + 5) == .success else {
            XCTFail("\(endpoint) did not come up within 5 s")
            throw RedisError.connectTimeout
        }
        return c
    }

    func close(_ connection: RedisConnection) {
        sync { _ in connection.close() }
    }
}

/// Polls `condition` every 5 ms until it holds or `seconds` pass.
func eventually(_ seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return try condition()
}
