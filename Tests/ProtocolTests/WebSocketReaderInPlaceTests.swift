import XCTest
@testable import Protocol

/// A whole single-frame message inside one read is handed out where it lies (unmasked in
/// place, no buffer); everything else is assembled as before.
final class WebSocketReaderInPlaceTests: XCTestCase {
    private var rng = SplitMix64(seed: 0x1A9)

    private func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0) -> [UInt8] {
        WebSocketReaderTests.clientFrame(opcode, payload, fin: fin, rsv: rsv, rng: &rng)
    }

    /// One feed of `bytes`, the events as the reader gives them, and the input after it.
    private func feedOnce(_ reader: inout WebSocketReader, _ bytes: [UInt8]) throws -> ([WebSocketEvent], [UInt8]) {
        var storage = bytes
        var events: [WebSocketEvent] = []
        try storage.withUnsafeMutableBytes { try reader.feed($0, into: &events) }
        return (events, storage)
    }

    func testWholeFramesInOneReadAreReadWhereTheyLie() throws {
        var reader = WebSocketReader(maxMessageSize: 1 << 20)
        let first = frame(0x1, Array(#"{"id":1,"op":"ping"}"#.utf8))
        let second = frame(0x2, Array(repeating: 0xAB, count: 300)) // a 16-bit length
        let (events, input) = try feedOnce(&reader, first + second)
        XCTAssertEqual(events, [.messageInInput(.text, 6..<(6 + 20)), .messageInInput(.binary, (first.count + 8)..<(first.count + 8 + 300))])
        XCTAssertEqual(Array(input[6..<26]), Array(#"{"id":1,"op":"ping"}"#.utf8), "unmasked in place")
        XCTAssertEqual(Array(input[(first.count + 8)...]), Array(repeating: 0xAB, count: 300))
        XCTAssertEqual(reader.bufferCapacity, 0, "no buffer was taken for either")
    }

    func testAMessageThatIsNotWholeInOneReadIsAssembled() throws {
        var reader = WebSocketReader(maxMessageSize: 1 << 20)
        let whole = frame(0x1, Array("split across reads".utf8))
        let (head, _) = try feedOnce(&reader, Array(whole.prefix(10)))
        XCTAssertEqual(head, [])
        let (tail, _) = try feedOnce(&reader, Array(whole.dropFirst(10)))
        XCTAssertEqual(tail, [.message(.text, Array("split across reads".utf8))])

        // Fragments, even both in one read, are assembled.
        let (fragments, _) = try feedOnce(&reader, frame(0x1, Array("ab".utf8), fin: false) + frame(0x0, Array("cd".utf8)))
        XCTAssertEqual(fragments, [.message(.text, Array("abcd".utf8))])
        // A ping between is its own event; the next whole frame is read in place again.
        let after = frame(0x1, Array("x".utf8))
        let (mixed, _) = try feedOnce(&reader, frame(0x9, [7]) + after)
        XCTAssertEqual(mixed, [.ping([7]), .messageInInput(.text, 13..<14)]) // 7 bytes of ping, then 6 of header
    }

    func testACompressedFrameIsInflatedNotReadInPlace() throws {
        let deflater = try XCTUnwrap(Deflater(parameters: DeflateParameters()))
        let packed = deflater.deflate(Array("hello hello hello".utf8))
        var reader = WebSocketReader(maxMessageSize: 1 << 20, inflater: Inflater(noContextTakeover: false))
        let (events, _) = try feedOnce(&reader, frame(0x1, packed, rsv: 0x40))
        XCTAssertEqual(events, [.message(.text, Array("hello hello hello".utf8))])
    }

    func testInvalidUTF8ReadInPlaceIsRefused() {
        var reader = WebSocketReader(maxMessageSize: 1 << 20)
        XCTAssertThrowsError(try feedOnce(&reader, frame(0x1, [0x68, 0xC3]))) { error in
            XCTAssertEqual(error as? WebSocketError, .invalidUTF8)
        }
        var second = WebSocketReader(maxMessageSize: 1 << 20)
        let (binary, _) = try! feedOnce(&second, frame(0x2, [0x68, 0xC3]))
        XCTAssertEqual(binary, [.messageInInput(.binary, 6..<8)], "binary is not UTF-8 checked")
    }

    func testTheSizeCapHoldsForAMessageReadInPlace() {
        var reader = WebSocketReader(maxMessageSize: 8)
        XCTAssertThrowsError(try feedOnce(&reader, frame(0x2, Array(repeating: 1, count: 9)))) { error in
            XCTAssertEqual(error as? WebSocketError, .messageTooBig(limit: 8))
        }
    }
}
