import XCTest
@testable import Protocol

final class FrameEncoderTests: XCTestCase {

    /// Reads server frames back with a reader that does not require masks.
    private func readBack(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> [WebSocketEvent] {
        var reader = WebSocketReader(maxMessageSize: 1 << 20, requireMask: false)
        return try WebSocketReaderTests.feed(&reader, bytes, feeding: .whole)
    }

    func testHeaderSizeAtLengthBoundaries() {
        let expected: [(Int, Int)] = [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10), (1 << 40, 10)]
        for (length, size) in expected {
            XCTAssertEqual(FrameEncoder.headerSize(payloadLength: length), size,
                           "expected a \(size)-byte header for a \(length)-byte payload")
        }
    }

    func testFrameHeaderBytesAtLengthBoundaries() throws {
        let cases: [(Int, [UInt8])] = [
            (125, [0x82, 125]),
            (126, [0x82, 126, 0x00, 0x7E]),
            (65_535, [0x82, 126, 0xFF, 0xFF]),
            (65_536, [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ]
        for (length, header) in cases {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let frame = FrameEncoder.frame(opcode: .binary, payload: payload)
            XCTAssertEqual(frame.count, header.count + length, "expected header plus payload for \(length) bytes")
            XCTAssertEqual(Array(frame.prefix(header.count)), header, "expected the exact header for \(length) bytes")
            XCTAssertEqual(Array(frame.dropFirst(header.count)), payload, "expected the payload unmasked after the header")
            XCTAssertEqual(try readBack(frame), [.message(.binary, payload)],
                           "expected the \(length)-byte frame to read back as the same message")
        }
    }

    func testWriteHeaderSetsFinRsv1AndOpcode() {
        var buffer = [UInt8](repeating: 0xEE, count: 10)
        let size = buffer.withUnsafeMutableBytes {
            FrameEncoder.writeHeader(opcode: .text, fin: false, rsv1: true, payloadLength: 5, into: $0.baseAddress!)
        }
        XCTAssertEqual(size, 2, "expected a 2-byte header for 5 bytes")
        XCTAssertEqual(Array(buffer.prefix(2)), [0x41, 0x05], "expected FIN clear, RSV1 set, opcode 1, unmasked length 5")
        let continuation = FrameEncoder.frame(opcode: .continuation, payload: [1], fin: true)
        XCTAssertEqual(continuation, [0x80, 0x01, 0x01], "expected a final continuation frame")
    }

    func testEmptyPayloadFrame() {
        XCTAssertEqual(FrameEncoder.frame(opcode: .ping, payload: []), [0x89, 0x00], "expected a bare ping frame")
    }

    func testCloseFrameWithoutCodeHasNoPayload() {
        XCTAssertEqual(FrameEncoder.closeFrame(code: nil), [0x88, 0x00], "expected an empty close frame when no code is given")
    }

    func testCloseFrameCarriesCodeAndReason() throws {
        let frame = FrameEncoder.closeFrame(code: .policyViolation, reason: "nope")
        XCTAssertEqual(frame, [0x88, 6, 0x03, 0xF0] + Array("nope".utf8), "expected code 1008 then the reason")
        XCTAssertEqual(try readBack(frame), [.close(.policyViolation, "nope")], "expected the close to read back")
    }

    func testCloseReasonOf123BytesIsKept() {
        let reason = String(repeating: "r", count: 123)
        let frame = FrameEncoder.closeFrame(code: .normal, reason: reason)
        XCTAssertEqual(frame.count, 2 + 2 + 123, "expected a 123-byte reason to fit unchanged")
        XCTAssertEqual(frame[1], 125, "expected the 125-byte control payload limit to be met exactly")
    }

    func testLongASCIIReasonIsTruncatedTo123Bytes() throws {
        let reason = String(repeating: "x", count: 200)
        let frame = FrameEncoder.closeFrame(code: .internalError, reason: reason)
        XCTAssertEqual(frame[1], 125, "expected the payload cut to 125 bytes")
        XCTAssertEqual(try readBack(frame), [.close(.internalError, String(repeating: "x", count: 123))],
                       "expected the first 123 bytes of the reason")
    }

    func testReasonIsTruncatedOnAUTF8Boundary() throws {
        // (ASCII prefix, multi-byte character) pairs where the character straddles byte 123.
        let cases: [(Int, String, Int)] = [
            (122, "é", 122),   // C3 A9 at 122..123: cut before it
            (121, "€", 121),   // E2 82 AC at 121..123: cut before it
            (120, "😀", 120),  // F0 9F 98 80 at 120..123: cut before it
            (121, "😀", 121),  // at 121..124
            (122, "😀", 122),  // at 122..125
            (123, "😀", 123),  // starts at 123: already outside
            (119, "😀", 123),  // 119..122 fits entirely
        ]
        for (prefixLength, character, keptLength) in cases {
            let reason = String(repeating: "a", count: prefixLength) + character + String(repeating: "z", count: 10)
            let frame = FrameEncoder.closeFrame(code: .normal, reason: reason)
            let kept = Array(frame.dropFirst(4))
            XCTAssertEqual(kept.count, keptLength,
                           "expected \(keptLength) reason bytes for \(prefixLength) ASCII bytes then \(character)")
            XCTAssertLessThanOrEqual(kept.count, 123, "expected at most 123 reason bytes")
            XCTAssertTrue(UTF8Validator.isValid(kept), "expected the truncated reason to be valid UTF-8")
            XCTAssertEqual(Array(reason.utf8.prefix(kept.count)), kept, "expected a prefix of the original reason")
            XCTAssertNoThrow(try readBack(frame), "expected the truncated close frame to be readable")
        }
    }

    func testReasonOfOnlyMultiByteCharactersIsTruncatedOnABoundary() {
        let reason = String(repeating: "日", count: 60) // 180 bytes, 3 per character
        let frame = FrameEncoder.closeFrame(code: .normal, reason: reason)
        let kept = Array(frame.dropFirst(4))
        XCTAssertEqual(kept.count, 123, "expected 41 whole characters (123 bytes)")
        XCTAssertTrue(UTF8Validator.isValid(kept), "expected whole characters only")
        let emoji = String(repeating: "😀", count: 40) // 160 bytes, 4 per character
        let kept4 = Array(FrameEncoder.closeFrame(code: .normal, reason: emoji).dropFirst(4))
        XCTAssertEqual(kept4.count, 120, "expected 30 whole emoji (120 bytes)")
    }
}
