import XCTest
@testable import Protocol

// An idle connection's reader gives its buffers back between frames, and never drops what a
// frame in progress needs.
final class WebSocketReaderIdleTests: XCTestCase {
    private var rng = SplitMix64(seed: 0x1D1E)

    private func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
        WebSocketReaderTests.clientFrame(opcode, payload, fin: fin, rng: &rng)
    }

    func testSpareCapacityIsReleasedBetweenFrames() throws {
        var reader = WebSocketReader(maxMessageSize: 1 << 20)
        let ping = try WebSocketReaderTests.feed(&reader, frame(0x9, Array(repeating: 7, count: 100)), feeding: .whole)
        XCTAssertEqual(ping, [.ping(Array(repeating: 7, count: 100))])
        _ = try WebSocketReaderTests.feed(&reader, frame(0x1, Array("{\"op\":\"ping\"}".utf8)), feeding: .byteByByte)
        XCTAssertGreaterThan(reader.bufferCapacity, 0, "the control payload and the header spill kept their room")
        reader.releaseSpareCapacity()
        XCTAssertEqual(reader.bufferCapacity, 0)
        XCTAssertEqual(try WebSocketReaderTests.feed(&reader, frame(0x1, Array("after".utf8)), feeding: .whole),
                       [.message(.text, Array("after".utf8))])
    }

    func testAFrameInProgressKeepsWhatItNeeds() throws {
        var reader = WebSocketReader(maxMessageSize: 1 << 20)
        // A fragmented message: its first part buffered, then half a header of the next part.
        let first = frame(0x1, Array("hello, ".utf8), fin: false), last = frame(0x0, Array("world".utf8))
        XCTAssertEqual(try WebSocketReaderTests.feed(&reader, first + last.prefix(1), feeding: .whole), [])
        reader.releaseSpareCapacity()
        XCTAssertEqual(try WebSocketReaderTests.feed(&reader, Array(last.dropFirst()), feeding: .whole),
                       [.message(.text, Array("hello, world".utf8))])
        // A control frame's payload half read.
        let ping = frame(0x9, Array("abcdef".utf8))
        XCTAssertEqual(try WebSocketReaderTests.feed(&reader, Array(ping.prefix(9)), feeding: .whole), [])
        reader.releaseSpareCapacity()
        XCTAssertEqual(try WebSocketReaderTests.feed(&reader, Array(ping.dropFirst(9)), feeding: .whole),
                       [.ping(Array("abcdef".utf8))])
    }
}
