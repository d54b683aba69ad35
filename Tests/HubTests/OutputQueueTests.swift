import XCTest
import Glibc
@testable import Hub

/// A connection's queued frames reach the socket whole and in order, whether they go out
/// gathered into one buffer, through an iovec list, or a piece at a time because the socket
/// took only part.
final class OutputQueueTests: XCTestCase {
    func testGatheredAndPartialSendsKeepEveryByteInOrder() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        for fd in fds { XCTAssertEqual(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0) }
        var small: Int32 = 4096 // a small send buffer: the queue meets partial sends
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))

        var expected: [UInt8] = []
        var queue = OutputQueue()
        for i in 0..<600 {
            // Runs of 1-700 bytes: some fit the gather buffer together, some only alone, some not at all.
            let run = (0..<(1 + (i * 37) % 700)).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            expected += run
            queue.append(Bytes.copy(run))
        }
        let gather = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 16)
        defer { gather.deallocate() }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var rounds = 0
        while !queue.isEmpty || received.count < expected.count {
            rounds += 1
            XCTAssertLessThan(rounds, 100_000, "the queue never drained")
            if rounds >= 100_000 { break }
            switch queue.flush(fd: fds[0], budget: 1 << 20, gather: gather) {
            case .failed(let e): return XCTFail("send failed: errno \(e)")
            case .drained, .partial: break
            }
            let n = buffer.withUnsafeMutableBytes { read(fds[1], $0.baseAddress, $0.count) }
            if n > 0 { received += buffer[0..<n] }
        }
        XCTAssertEqual(received.count, expected.count)
        XCTAssertTrue(received == expected, "bytes out of order or lost")
    }

    /// A connection's own frames share runs, shared runs stay apart, and nothing reorders: the
    /// bytes on the socket are the frames in the order queued, through partial sends that leave
    /// the last run half written while more is added to it. The frame count is exact throughout.
    func testOwnFramesShareRunsAndKeepTheirOrderAndCount() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        for fd in fds { XCTAssertEqual(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0) }
        var small: Int32 = 4096
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let gather = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 16)
        defer { gather.deallocate() }

        var queue = OutputQueue()
        var expected: [UInt8] = []
        var queued = 0, received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        func frame(_ i: Int) -> [UInt8] { (0..<((i * 53) % 300)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) } }
        for i in 0..<2_000 {
            let payload = frame(i)
            if i % 7 == 3 {
                let shared = Bytes.frame(.text, payload)
                expected += Array(shared.buffer)
                queue.append(shared)
            } else {
                let reference = Bytes.frame(.binary, payload)
                withExtendedLifetime(reference) { expected += Array(reference.buffer) }
                payload.withUnsafeBytes { queue.appendOwnFrame(.binary, $0) }
            }
            queued += 1
            XCTAssertEqual(queue.bytes, expected.count - received.count, "bytes after frame \(i)")
            // Now and then the socket takes part of what waits (often a run's middle).
            if i % 5 == 0 {
                if case .failed(let e) = queue.flush(fd: fds[0], budget: 1 << 20, gather: gather) { return XCTFail("errno \(e)") }
                let n = buffer.withUnsafeMutableBytes { read(fds[1], $0.baseAddress, $0.count) }
                if n > 0 { received += buffer[0..<n] }
            }
        }
        XCTAssertGreaterThan(queue.frames, 0)
        var rounds = 0
        while !queue.isEmpty || received.count < expected.count {
            rounds += 1
            if rounds >= 100_000 { return XCTFail("the queue never drained") }
            if case .failed(let e) = queue.flush(fd: fds[0], budget: 1 << 20, gather: gather) { return XCTFail("errno \(e)") }
            let n = buffer.withUnsafeMutableBytes { read(fds[1], $0.baseAddress, $0.count) }
            if n > 0 { received += buffer[0..<n] }
        }
        XCTAssertEqual(queue.frames, 0)
        XCTAssertEqual(received.count, expected.count)
        let firstDifference = zip(received, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        XCTAssertNil(firstDifference, "bytes out of order or lost: first difference at byte \(firstDifference ?? -1) of \(expected.count)")
    }

    func testFrameCountCountsEveryFrameOfAnOwnRun() {
        var queue = OutputQueue()
        let payload = [UInt8](repeating: 0x61, count: 64)
        for _ in 0..<16 { payload.withUnsafeBytes { queue.appendOwnFrame(.text, $0) } }
        XCTAssertEqual(queue.frames, 16, "16 echoes in two runs count as 16 frames")
        XCTAssertEqual(queue.runs, 2, "the first echo alone in a run of its size, the other 15 in one run")
        XCTAssertEqual(queue.bytes, 16 * 66)
        queue.append(Bytes.frame(.text, payload))
        payload.withUnsafeBytes { queue.appendOwnFrame(.text, $0) }
        XCTAssertEqual(queue.frames, 18)
        // Nothing was sent: everything is dropped, and the counts come back to zero.
        queue.dropUnstarted()
        XCTAssertEqual(queue.frames, 0)
        XCTAssertEqual(queue.bytes, 0)
        XCTAssertTrue(queue.isEmpty)
        payload.withUnsafeBytes { queue.appendOwnFrame(.text, $0) }
        XCTAssertEqual(queue.frames, 1)
        XCTAssertEqual(queue.runs, 1)
    }
}
