import Glibc
import XCTest
@testable import Hub

// A Redis connection's output under a peer that keeps reading but never catches up: the
// buffer keeps at most about twice what is unsent, not everything ever sent.
final class RedisOutputTests: XCTestCase {
    func testSentBytesAreDroppedWhileTheBufferNeverEmpties() throws {
        let (mine, peer) = try socketPair()
        defer { close(mine); close(peer) }
        var out = RedisOutput()
        let value = [UInt8](repeating: 0x61, count: 16 << 10)
        var sink = [UInt8](repeating: 0, count: 48 << 10)
        var everSent = 0
        var maxHeldOverUnsent = 0
        for _ in 0..<400 {
            for _ in 0..<4 { out.append([Array("SET".utf8), Array("k".utf8), value]) }
            let before = out.unsent
            XCTAssertNotEqual(out.flush(fd: mine), .failed(0))
            everSent += before - out.unsent
            _ = read(peer, &sink, sink.count) // drains less than was appended: the backlog stays
            maxHeldOverUnsent = max(maxHeldOverUnsent, out.held - 2 * out.unsent)
        }
        XCTAssertGreaterThan(out.unsent, 0, "expected the peer never to catch up in this test")
        XCTAssertGreaterThan(everSent, 4 * RedisOutput.compactAfterBytes, "expected many bytes sent while never drained")
        XCTAssertLessThanOrEqual(maxHeldOverUnsent, RedisOutput.compactAfterBytes,
                                 "expected the buffer to hold at most twice the unsent bytes plus the threshold")
    }

    func testADrainedBufferHoldsNothing() throws {
        let (mine, peer) = try socketPair()
        defer { close(mine); close(peer) }
        var out = RedisOutput()
        out.append(["PING"])
        XCTAssertEqual(out.flush(fd: mine), .drained)
        XCTAssertEqual(out.held, 0)
        XCTAssertEqual(out.unsent, 0)
    }

    func testAPublishIsWrittenAsTheSameCommandTheArgumentFormWrites() {
        var direct = RedisOutput(), viaArgs = RedisOutput()
        let message: [UInt8] = [1, 0, 255, 13, 10]
        direct.appendPublish(prefix: Array("c1:".utf8), channel: "conv:ü", message: message)
        viaArgs.append([Array("PUBLISH".utf8), Array("c1:conv:ü".utf8), message])
        XCTAssertEqual(direct.buffer, viaArgs.buffer)
    }
}
