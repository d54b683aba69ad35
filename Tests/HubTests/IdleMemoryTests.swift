import Foundation
import Glibc
import Protocol
import XCTest
@testable import Hub

// What an idle, subscribed WebSocket keeps (bench row e: 19,000 of them). Not timed: the
// loop's sweep is called directly, on the loop's thread, where the hub calls it once a second.
final class IdleMemoryTests: XCTestCase {
    private var hub: TestHub!

    override func setUpWithError() throws { hub = try TestHub(loops: 1) }
    override func tearDown() { hub?.stop() }

    /// Runs `body` on the hub's only loop and waits for it (at most 10 s).
    private func onLoop<T>(_ body: @escaping @Sendable (EventLoop) -> T) throws -> T {
        let box = LoopResult<T>(), done = DispatchSemaphore(value: 0)
        hub.server.loops[0].execute { loop in
            box.value = body(loop)
            done.signal()
        }
        guard done.wait(timeout: .now() + 10) == .success, let value = box.value else {
            throw TestError("the loop did not run the job within 10 s")
        }
        return value
    }

    /// The sessions open on the loop, with their connections.
    private static func sessions(_ loop: EventLoop) -> [(Connection, Session)] {
        loop.openConnections.compactMap { c in (c.handler as? Session).map { (c, $0) } }
    }

    private func subscribedIdleClient() throws -> ChatClient {
        let c = try ChatClient(port: hub.port, urlToken: TestHub.token("ann", .client))
        XCTAssertEqual(try c.result("subscribe", ["channel": .string("conv:website:ann")])["last_seq"]?.intValue, 0)
        XCTAssertNotNil(try c.result("ping")) // a message with a reply: the reader and the output were used
        return c
    }

    func testAnIdleConnectionHoldsNoBufferCapacityAfterTwoSweeps() throws {
        let client = try subscribedIdleClient()
        let capacities = try onLoop { loop in
            Self.sessions(loop).map { c, _ -> [Int] in
                let used = c.bufferCapacity
                c.sweep(now: loop.now) // output queued since the last check: kept
                let afterOne = c.bufferCapacity
                c.sweep(now: loop.now) // nothing queued for a whole interval: released
                let afterTwo = c.bufferCapacity
                return [used.outputSlots, afterOne.outputSlots, afterTwo.outputSlots, afterTwo.readerBytes]
            }
        }
        XCTAssertEqual(capacities.count, 1)
        XCTAssertGreaterThan(capacities.first?[0] ?? 0, 0, "the output list held its array after the replies")
        XCTAssertGreaterThan(capacities.first?[1] ?? 0, 0, "a connection that queued since the last sweep keeps it")
        XCTAssertEqual(capacities.first?[2], 0, "idle for a sweep interval: the output list's array is released")
        XCTAssertEqual(capacities.first?[3], 0, "the frame reader holds no buffer between frames")
        // Still fully working after the release.
        XCTAssertNotNil(try client.result("ping"))
        XCTAssertEqual(try client.result("subscribe", ["channel": .string("conv:website:ann")])["last_seq"]?.intValue, 0)
    }

    func testTheURLTokenIsNotKeptAndAudienceNamesAreShared() throws {
        let a = try subscribedIdleClient(), b = try subscribedIdleClient()
        let facts = try onLoop { loop in
            let sessions = Self.sessions(loop).map(\.1)
            let storages = Set(sessions.map { s in s.broadcastChannels.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } })
            return (sessions.count, sessions.allSatisfy { $0.urlToken == nil }, storages.count,
                    sessions.first?.broadcastChannels ?? [])
        }
        XCTAssertEqual(facts.0, 2)
        XCTAssertTrue(facts.1, "the ?token= is dropped once it was verified")
        XCTAssertEqual(facts.2, 1, "every session of a role holds the same array of audience channel names")
        XCTAssertEqual(facts.3, ["broadcast:all", "broadcast:client"])
        _ = (a, b)
    }

    func testTheOutputListIsReleasedOnceNothingWasQueuedForAnInterval() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        var queue = OutputQueue()
        for round in 1...2 {
            queue.append(Bytes.copy(Array("frame \(round)".utf8)))
            guard case .drained = queue.flush(fd: fds[0], budget: 1 << 16) else { return XCTFail("round \(round): not written") }
            queue.releaseIfIdle() // queued since the last check: the array is kept for the next frames
            XCTAssertGreaterThan(queue.listCapacity, 0, "round \(round)")
            queue.releaseIfIdle() // nothing queued since: released, once
            XCTAssertEqual(queue.listCapacity, 0, "round \(round)")
            queue.releaseIfIdle()
            XCTAssertEqual(queue.listCapacity, 0, "round \(round)")
        }
        var received = [UInt8](repeating: 0, count: 64)
        let n = read(fds[1], &received, received.count)
        XCTAssertEqual(String(decoding: received.prefix(max(0, n)), as: UTF8.self), "frame 1frame 2")
    }
}

/// What a job on the loop hands back to the test's thread (written before the semaphore is
/// signalled, read after the wait).
private final class LoopResult<T>: @unchecked Sendable {
    var value: T?
}
