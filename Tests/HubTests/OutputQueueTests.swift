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
}
