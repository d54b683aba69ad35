import Core
import Foundation
import Glibc
import XCTest
@testable import Hub

// The loop driving a socket it does not own (a socketpair end standing in for a Redis client's
// socket) and its millisecond timers: readiness callbacks on the loop's thread, write interest
// on and off, unregistering inside a callback, timers in deadline order and on time.
final class LoopSocketTests: XCTestCase {
    func testReadableCallbackSeesWhatThePeerWrote() throws {
        let loop = try RunningLoop()
        defer { loop.stop() }
        let (mine, peer) = try socketPair()
        defer { close(peer) }
        let s = RecordingSocket(fd: mine, loop: loop.loop)
        loop.sync { l in s.loopThread.withLock { $0 = pthread_self() }; s.id = l.register(s) }
        XCTAssertEqual(write(peer, "hello", 5), 5)
        XCTAssertTrue(s.waitFor { $0.received == Array("hello".utf8) }, "expected the loop to read 'hello', got \(s.snapshot.received)")
        XCTAssertTrue(s.snapshot.onLoopThread, "expected callbacks on the loop's thread")
        loop.sync { loop in if let id = s.id { loop.unregister(id) } }
        close(mine)
    }

    func testSlotGenerationsWrapBelowTheTokenTagBits() {
        XCTAssertEqual(SlotGeneration.next(after: 1), 2)
        XCTAssertEqual(SlotGeneration.next(after: SlotGeneration.max - 1), SlotGeneration.max)
        XCTAssertEqual(SlotGeneration.next(after: SlotGeneration.max), 1, "expected a wrap to 1, skipping 0")
        let highestToken = UInt64(SlotGeneration.max) << 32 | 0xFFFF_FFFF
        XCTAssertEqual(highestToken & (1 << 61 | 1 << 62 | 1 << 63), 0, "expected no generation to reach a tag bit")
    }

    func testWriteInterestGivesWritableCallbacksUntilTurnedOff() throws {
        let loop = try RunningLoop()
        defer { loop.stop() }
        let (mine, peer) = try socketPair()
        defer { close(peer); close(mine) }
        let s = RecordingSocket(fd: mine, loop: loop.loop)
        s.stopWritingAfter = 3
        loop.sync { s.id = $0.register(s) }
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(s.snapshot.writables, 0, "expected no writable callback without write interest")
        loop.sync { loop in if let id = s.id { loop.setWriteInterest(id, true) } }
        XCTAssertTrue(s.waitFor { $0.writables >= 3 }, "expected writable callbacks with write interest on")
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(s.snapshot.writables, 3, "expected no writable callback once interest was turned off")
        loop.sync { loop in if let id = s.id { loop.unregister(id) } }
    }

    func testASocketUnregisteredInItsCallbackGetsNoMoreCallbacks() throws {
        let loop = try RunningLoop()
        defer { loop.stop() }
        let (mine, peer) = try socketPair()
        defer { close(peer) }
        let s = RecordingSocket(fd: mine, loop: loop.loop)
        s.unregisterOnRead = true
        loop.sync { loop in
            s.id = loop.register(s)
            loop.setWriteInterest(s.id!, true) // would call onWritable in the same event
        }
        XCTAssertEqual(write(peer, "x", 1), 1)
        XCTAssertTrue(s.waitFor { $0.received.count == 1 })
        let writablesAtUnregister = s.snapshot.writablesAtUnregister
        XCTAssertEqual(write(peer, "y", 1), 1)
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(s.snapshot.received, Array("x".utf8), "expected no read after unregister")
        XCTAssertEqual(s.snapshot.writables, writablesAtUnregister, "expected no writable callback after unregister")
        // A socket registered after it may take the freed slot; stale ids still name nothing.
        let (other, otherPeer) = try socketPair()
        defer { close(other); close(otherPeer) }
        let t = RecordingSocket(fd: other, loop: loop.loop)
        loop.sync { loop in
            t.id = loop.register(t)
            loop.unregister(s.id!) // stale: must not touch t
        }
        XCTAssertEqual(write(otherPeer, "z", 1), 1)
        XCTAssertTrue(t.waitFor { $0.received == Array("z".utf8) }, "expected the new socket to keep working")
        loop.sync { loop in loop.unregister(t.id!) }
        close(mine)
    }

    func testTimersFireInDeadlineOrderAndOnTime() throws {
        let loop = try RunningLoop()
        defer { loop.stop() }
        let fired = Locked<[(Int, Int64)]>([])
        let delays: [Int64] = [40, 10, 30, 0, 20, 20, 50]
        let start = Locked<Int64>(0)
        loop.sync { loop in
            start.withLock { $0 = monotonicMicros() }
            for (i, d) in delays.enumerated() {
                loop.after(ms: d) { _ in fired.withLock { $0.append((i, monotonicMicros())) } }
            }
            let cancelled = loop.after(ms: 15) { _ in fired.withLock { $0.append((99, monotonicMicros())) } }
            loop.cancel(cancelled)
        }
        let deadline = Date().addingTimeInterval(2)
        while fired.withLock({ $0.count }) < delays.count && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        Thread.sleep(forTimeInterval: 0.03)
        let got = fired.withLock { $0 }
        XCTAssertEqual(got.map(\.0), [3, 1, 4, 5, 2, 0, 6], "expected deadline order (ties in the order set), no cancelled timer")
        let t0 = start.withLock { $0 }
        var lateness: [Int64] = []
        for (i, at) in got where i != 99 {
            let elapsedMs = (at - t0) / 1000
            XCTAssertGreaterThanOrEqual(at - t0, delays[i] * 1000 - 1000, "timer \(i) fired early")
            lateness.append(elapsedMs - delays[i])
        }
        lateness.sort()
        XCTAssertLessThanOrEqual(lateness[lateness.count / 2], 5, "expected timers within 5 ms (median lateness), got \(lateness)")
        XCTAssertLessThanOrEqual(lateness.last ?? 0, 50, "expected no timer over 50 ms late, got \(lateness)")
    }

    func testATimerWakesAnIdleLoopWellBeforeTheSweep() throws {
        let loop = try RunningLoop()
        defer { loop.stop() }
        Thread.sleep(forTimeInterval: 0.02) // the loop is asleep in epoll_wait (up to the 1 s sweep)
        let done = DispatchSemaphore(value: 0)
        let began = monotonicMicros()
        loop.loop.execute { loop in loop.after(ms: 25) { _ in done.signal() } }
        XCTAssertEqual(done.wait(timeout: .now() + 2), .success)
        let ms = (monotonicMicros() - began) / 1000
        XCTAssertLessThan(ms, 200, "expected the 25 ms timer to fire long before the sweep, took \(ms) ms")
    }
}

/// An event loop on its own thread for a test, stopped at the end.
final class RunningLoop: @unchecked Sendable {
    let loop: EventLoop

    init(index: Int = 0) throws {
        loop = try EventLoop(index: index, counters: EngineCounters())
        loop.start()
    }

    /// Runs `body` on the loop's thread and waits for it (at most 5 s).
    func sync(_ body: @escaping (EventLoop) -> Void) {
        let done = DispatchSemaphore(value: 0)
        let box = UncheckedBox(body)
        loop.execute { l in box.value(l); done.signal() }
        if done.wait(timeout: .now() + 5) == .timedOut { XCTFail("loop job did not run within 5 s") }
    }

    func stop() {
        loop.execute { $0.beginShutdown(deadlineMs: 0) }
        if !loop.waitUntilFinished(deadline: .now() + 5) { XCTFail("the test loop did not stop within 5 s") }
    }
}

/// Carries a non-Sendable value to a loop job that runs while the sender waits for it.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

func socketPair() throws -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0 else {
        throw SocketError(what: "socketpair", errno: errno)
    }
    return (fds[0], fds[1])
}

/// A LoopSocket that records what the loop reported.
private final class RecordingSocket: LoopSocket, @unchecked Sendable {
    struct Snapshot {
        var received: [UInt8] = []
        var writables = 0
        var writablesAtUnregister = 0
        var onLoopThread = true
    }
    let fd: Int32
    var id: LoopSocketID?
    var stopWritingAfter = Int.max
    var unregisterOnRead = false
    private let state = Locked(Snapshot())
    private unowned let loop: EventLoop
    /// Set by `register` in the tests (the first call runs on the loop's thread).
    let loopThread = Locked<pthread_t?>(nil)

    init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
    }

    var snapshot: Snapshot { state.withLock { $0 } }

    func waitFor(_ condition: (Snapshot) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            if condition(snapshot) { return true }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return false
    }

    private func noteThread() {
        if let expected = loopThread.withLock({ $0 }), pthread_equal(expected, pthread_self()) == 0 {
            state.withLock { $0.onLoopThread = false }
        }
    }

    func onReadable() {
        noteThread()
        var buf = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buf, 64)
        if n > 0 { state.withLock { $0.received += buf[0..<n] } }
        if unregisterOnRead, let id {
            loop.unregister(id)
            state.withLock { $0.writablesAtUnregister = $0.writables }
        }
    }

    func onWritable() {
        noteThread()
        let n = state.withLock { s -> Int in s.writables += 1; return s.writables }
        if n >= stopWritingAfter, let id { loop.setWriteInterest(id, false) }
    }

    func onError() { noteThread() }

}
