import XCTest
@testable import Protocol

final class WebSocketReaderTests: XCTestCase {

    // MARK: frame building

    enum LengthForm { case minimal, sixteen, sixtyFour }

    /// A client frame (masked unless told otherwise) with a random mask key from `rng`.
    /// `opcode` is a raw value so reserved opcodes can be sent; `rsv` holds bits 0x40/0x20/0x10.
    static func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0,
                            masked: Bool = true, lengthForm: LengthForm = .minimal,
                            rng: inout SplitMix64) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | rsv | (opcode & 0x0F)]
        let maskBit: UInt8 = masked ? 0x80 : 0
        let n = payload.count
        let form: LengthForm = lengthForm == .minimal ? (n < 126 ? .minimal : (n <= 0xFFFF ? .sixteen : .sixtyFour)) : lengthForm
        switch form {
        case .minimal:
            out.append(maskBit | UInt8(n))
        case .sixteen:
            out.append(maskBit | 126)
            out.append(contentsOf: [UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)])
        case .sixtyFour:
            out.append(maskBit | 127)
            out.append(contentsOf: (0..<8).reversed().map { UInt8(UInt64(n) >> (UInt64($0) * 8) & 0xFF) })
        }
        if masked {
            let key = rng.bytes(4)
            out.append(contentsOf: key)
            out.append(contentsOf: payload.enumerated().map { $0.element ^ key[$0.offset & 3] })
        } else {
            out.append(contentsOf: payload)
        }
        return out
    }

    private var rng = SplitMix64(seed: 0xC0FFEE)

    private func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0,
                       masked: Bool = true, lengthForm: LengthForm = .minimal) -> [UInt8] {
        Self.clientFrame(opcode, payload, fin: fin, rsv: rsv, masked: masked, lengthForm: lengthForm, rng: &rng)
    }

    private func text(_ s: String, fin: Bool = true) -> [UInt8] { frame(0x1, Array(s.utf8), fin: fin) }

    private func closePayload(_ code: UInt16, _ reason: [UInt8] = []) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)] + reason
    }

    // MARK: feeding

    /// Feeds `bytes` to `reader` in the reads `feeding` describes (each read is unmasked in place).
    static func feed(_ reader: inout WebSocketReader, _ bytes: [UInt8], feeding: Feeding) throws -> [WebSocketEvent] {
        var events: [WebSocketEvent] = []
        var storage = bytes
        let ranges = feeding.ranges(count: bytes.count)
        try storage.withUnsafeMutableBytes { all in
            for r in ranges {
                let read = UnsafeMutableRawBufferPointer(rebasing: all[r])
                let before = events.count
                try reader.feed(read, into: &events)
                // A message read in place is copied out before the next read, as the
                // connection reads it before its buffer is filled again.
                for i in before..<events.count { events[i] = events[i].copiedOut(of: UnsafeRawBufferPointer(read)) }
            }
        }
        return events
    }

    private func makeReader(maxMessageSize: Int, inflater: Bool) -> WebSocketReader {
        WebSocketReader(maxMessageSize: maxMessageSize, inflater: inflater ? Inflater(noContextTakeover: false) : nil)
    }

    private func assertEvents(_ bytes: [UInt8], _ expected: [WebSocketEvent],
                              maxMessageSize: Int = 1 << 20, inflater: Bool = false,
                              feedings: [Feeding] = Feeding.all(randomCount: 30),
                              file: StaticString = #filePath, line: UInt = #line) {
        for feeding in feedings {
            var reader = makeReader(maxMessageSize: maxMessageSize, inflater: inflater)
            do {
                let events = try Self.feed(&reader, bytes, feeding: feeding)
                XCTAssertEqual(events, expected, "expected the same events when fed \(feeding)", file: file, line: line)
            } catch {
                XCTFail("expected no error when fed \(feeding), got \(error)", file: file, line: line)
            }
        }
    }

    private func assertRejects(_ bytes: [UInt8], closeCode: UInt16, error expected: WebSocketError? = nil,
                               maxMessageSize: Int = 1 << 20, inflater: Bool = false,
                               feedings: [Feeding] = Feeding.all(randomCount: 10),
                               file: StaticString = #filePath, line: UInt = #line) {
        for feeding in feedings {
            var reader = makeReader(maxMessageSize: maxMessageSize, inflater: inflater)
            do {
                let events = try Self.feed(&reader, bytes, feeding: feeding)
                XCTFail("expected close code \(closeCode) when fed \(feeding), got events \(events)", file: file, line: line)
            } catch let error as WebSocketError {
                XCTAssertEqual(error.closeCode.rawValue, closeCode,
                               "expected close code \(closeCode) when fed \(feeding), got \(error.closeCode) (\(error))",
                               file: file, line: line)
                if let expected {
                    XCTAssertEqual(error, expected, "expected \(expected) when fed \(feeding)", file: file, line: line)
                }
            } catch {
                XCTFail("expected a WebSocketError, got \(error)", file: file, line: line)
            }
        }
    }

    // MARK: messages

    func testSingleTextMessage() {
        assertEvents(text("Hello, Montrose! ünïcødé 😀"), [.message(.text, Array("Hello, Montrose! ünïcødé 😀".utf8))])
    }

    func testBinaryMessage() {
        let payload = (0..<200).map { UInt8($0 & 0xFF) } + [0xFF, 0xFE, 0x00, 0xC0]
        assertEvents(frame(0x2, payload), [.message(.binary, payload)])
    }

    func testFragmentedTextWithPingBetweenFragmentsDeliversPingFirst() {
        let bytes = text("Hel", fin: false) + frame(0x9, Array("are you there".utf8))
            + frame(0x0, Array("lo, ".utf8), fin: false) + frame(0xA, [1, 2, 3])
            + frame(0x0, Array("world".utf8))
        assertEvents(bytes, [.ping(Array("are you there".utf8)), .pong([1, 2, 3]),
                             .message(.text, Array("Hello, world".utf8))])
    }

    func testFragmentedBinaryMessageIsReassembled() {
        let parts: [[UInt8]] = [[1, 2, 3], [], [4], [5, 6, 7, 8, 9]]
        var bytes = frame(0x2, parts[0], fin: false)
        for (i, part) in parts.dropFirst().enumerated() {
            bytes += frame(0x0, part, fin: i == parts.count - 2)
        }
        assertEvents(bytes, [.message(.binary, [1, 2, 3, 4, 5, 6, 7, 8, 9])])
    }

    func testSixteenBitLengthEncoding() {
        let payload = sampleText(byteCount: 300, seed: 1)
        let bytes = frame(0x1, payload)
        XCTAssertEqual(bytes[1] & 0x7F, 126, "fixture: expected the 16-bit length form for 300 bytes")
        assertEvents(bytes, [.message(.text, payload)], feedings: Feeding.all(randomCount: 10))
        // The largest 16-bit length.
        let big = [UInt8](repeating: 0x5A, count: 0xFFFF)
        assertEvents(frame(0x2, big), [.message(.binary, big)], feedings: [.whole, .random(seed: 7), .random(seed: 8)])
    }

    func testSixtyFourBitLengthEncoding() {
        let payload = sampleText(byteCount: 70_000, seed: 2)
        let bytes = frame(0x1, payload)
        XCTAssertEqual(bytes[1] & 0x7F, 127, "fixture: expected the 64-bit length form for 70 000 bytes")
        assertEvents(bytes, [.message(.text, payload)], feedings: Feeding.all(randomCount: 5))
    }

    func testNonMinimalLengthEncodingsAreAccepted() {
        let payload = Array("short".utf8)
        assertEvents(frame(0x1, payload, lengthForm: .sixteen) + frame(0x1, payload, lengthForm: .sixtyFour),
                     [.message(.text, payload), .message(.text, payload)])
    }

    func testEmptyMessages() {
        let bytes = frame(0x1, []) + frame(0x2, []) + text("", fin: false) + frame(0x0, []) + frame(0x9, []) + frame(0xA, [])
        assertEvents(bytes, [.message(.text, []), .message(.binary, []), .message(.text, []), .ping([]), .pong([])])
    }

    func testSeveralMessagesInOneRead() {
        let bytes = text("one") + frame(0x2, [2]) + text("three")
        assertEvents(bytes, [.message(.text, Array("one".utf8)), .message(.binary, [2]), .message(.text, Array("three".utf8))])
    }

    func testCloseWithCodeAndReason() {
        assertEvents(frame(0x8, closePayload(1000, Array("bye ✓".utf8))), [.close(CloseCode(1000), "bye ✓")])
    }

    func testCloseWithCodeOnly() {
        assertEvents(frame(0x8, closePayload(1001)), [.close(.goingAway, "")])
    }

    func testCloseWithNoPayload() {
        assertEvents(frame(0x8, []), [.close(nil, "")])
    }

    func testInputAfterCloseIsIgnored() {
        assertEvents(frame(0x8, closePayload(1000)) + text("late") + [0xFF, 0xFF, 0xFF], [.close(.normal, "")])
    }

    func testUnmaskedFramesAreAcceptedWhenMaskIsNotRequired() throws {
        var reader = WebSocketReader(maxMessageSize: 1024, requireMask: false)
        let events = try Self.feed(&reader, frame(0x1, Array("hi".utf8), masked: false), feeding: .byteByByte)
        XCTAssertEqual(events, [.message(.text, Array("hi".utf8))], "expected an unmasked frame to be read when masks are optional")
    }

    func testCompressedMessageIsInflated() throws {
        let deflater = try XCTUnwrap(Deflater(parameters: DeflateParameters()), "expected a deflater")
        let message = sampleText(byteCount: 5_000, seed: 3)
        let first = deflater.deflate(message)
        let second = deflater.deflate(message)
        // Second message compressed against the first (context takeover), sent in two fragments
        // with a ping between them.
        let bytes = frame(0x1, first, rsv: 0x40)
            + frame(0x1, Array(second.prefix(2)), fin: false, rsv: 0x40) + frame(0x9, [7])
            + frame(0x0, Array(second.dropFirst(2)))
            + text("plain")
        assertEvents(bytes, [.message(.text, message), .ping([7]), .message(.text, message), .message(.text, Array("plain".utf8))],
                     inflater: true, feedings: Feeding.all(randomCount: 10))
    }

    // MARK: framing rule violations (1002)

    func testUnmaskedClientFrameIsRejectedWith1002() {
        assertRejects(frame(0x1, Array("hi".utf8), masked: false), closeCode: 1002, error: .unmaskedFrame)
    }

    func testRSV2IsRejectedWith1002() {
        assertRejects(frame(0x1, Array("hi".utf8), rsv: 0x20), closeCode: 1002, error: .reservedBitsSet)
    }

    func testRSV3IsRejectedWith1002() {
        assertRejects(frame(0x2, [1], rsv: 0x10), closeCode: 1002, error: .reservedBitsSet)
    }

    func testRSV1WithoutDeflateIsRejectedWith1002() {
        assertRejects(frame(0x1, Array("hi".utf8), rsv: 0x40), closeCode: 1002, error: .reservedBitsSet)
    }

    func testRSV1OnControlFrameIsRejectedWith1002EvenWithDeflate() {
        assertRejects(frame(0x9, [], rsv: 0x40), closeCode: 1002, inflater: true)
    }

    func testRSV1OnContinuationIsRejectedWith1002() {
        assertRejects(frame(0x2, [0x00], fin: false, rsv: 0x40) + frame(0x0, [0x00], rsv: 0x40), closeCode: 1002,
                      error: .compressedContinuation, inflater: true)
    }

    func testReservedOpcodesAreRejectedWith1002() {
        for op: UInt8 in [3, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            assertRejects(frame(op, [1, 2]), closeCode: 1002, error: .reservedOpcode(op))
        }
    }

    func testPingOf126BytesIsRejectedWith1002() {
        assertRejects(frame(0x9, [UInt8](repeating: 0x61, count: 126)), closeCode: 1002, error: .controlFrameTooLong)
        assertRejects(frame(0x8, closePayload(1000, [UInt8](repeating: 0x61, count: 124))), closeCode: 1002,
                      error: .controlFrameTooLong)
    }

    func testPingOf125BytesIsAccepted() {
        let payload = [UInt8](repeating: 0x61, count: 125)
        assertEvents(frame(0x9, payload), [.ping(payload)])
    }

    func testFragmentedPingIsRejectedWith1002() {
        assertRejects(frame(0x9, [1], fin: false), closeCode: 1002, error: .fragmentedControlFrame)
    }

    func testContinuationWithoutStartIsRejectedWith1002() {
        assertRejects(frame(0x0, Array("orphan".utf8)), closeCode: 1002, error: .unexpectedContinuation)
        // Also after a complete message.
        assertRejects(text("done") + frame(0x0, [1]), closeCode: 1002, error: .unexpectedContinuation)
    }

    func testNewTextWhileFragmentedMessageIsOpenIsRejectedWith1002() {
        assertRejects(text("first", fin: false) + text("second"), closeCode: 1002, error: .expectedContinuation)
        assertRejects(frame(0x2, [1], fin: false) + frame(0x1, []), closeCode: 1002, error: .expectedContinuation)
    }

    func testSixtyFourBitLengthWithMostSignificantBitSetIsRejectedWith1002() {
        let header: [UInt8] = [0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44]
        assertRejects(header, closeCode: 1002, error: .invalidLength)
    }

    // MARK: UTF-8 (1007)

    func testInvalidUTF8TextIsRejectedWith1007() {
        assertRejects(frame(0x1, [0x61, 0xC0, 0x80]), closeCode: 1007, error: .invalidUTF8)
        assertRejects(frame(0x1, [0xED, 0xA0, 0x80]), closeCode: 1007, error: .invalidUTF8)
        assertRejects(frame(0x1, [0x61, 0xE2, 0x82]), closeCode: 1007, error: .invalidUTF8) // truncated at FIN
    }

    func testCodePointSplitAcrossFragmentsIsValid() {
        let emoji = Array("😀".utf8) // F0 9F 98 80
        let bytes = frame(0x1, [0x61] + emoji.prefix(2), fin: false) + frame(0x0, Array(emoji.suffix(2)) + [0x62])
        assertEvents(bytes, [.message(.text, [0x61] + emoji + [0x62])])
        // One byte per fragment.
        var oneByEach = frame(0x1, [emoji[0]], fin: false)
        for (i, b) in emoji.dropFirst().enumerated() { oneByEach += frame(0x0, [b], fin: i == 2) }
        assertEvents(oneByEach, [.message(.text, emoji)])
    }

    func testInvalidUTF8InFirstFragmentFailsBeforeFin() {
        // Only the first fragment is sent: the reader must not wait for the rest of the message.
        assertRejects(frame(0x1, Array("valid start ".utf8) + [0xFF], fin: false), closeCode: 1007, error: .invalidUTF8)
        // An invalid continuation after a valid lead byte, in the first fragment.
        assertRejects(frame(0x1, [0xE2, 0x28, 0xA1], fin: false), closeCode: 1007, error: .invalidUTF8)
    }

    func testInvalidUTF8FailsBeforeTheFrameIsComplete() throws {
        // A 1000-byte text frame whose 3rd byte is invalid: only the first 20 payload bytes arrive.
        var payload = [UInt8](repeating: 0x61, count: 1000)
        payload[2] = 0xFE
        let bytes = frame(0x1, payload)
        var reader = WebSocketReader(maxMessageSize: 1 << 20)
        XCTAssertThrowsError(try Self.feed(&reader, Array(bytes.prefix(8 + 20)), feeding: .whole),
                             "expected invalid UTF-8 to be reported before the frame completes") { error in
            XCTAssertEqual((error as? WebSocketError)?.closeCode.rawValue, 1007, "expected 1007, got \(error)")
        }
    }

    func testTruncatedCodePointAtEndOfFragmentedMessageIsRejectedWith1007() {
        assertRejects(text("ok", fin: false) + frame(0x0, [0xF0, 0x9F, 0x98]), closeCode: 1007, error: .invalidUTF8)
    }

    func testCompressedInvalidUTF8IsRejectedWith1007() throws {
        let deflater = try XCTUnwrap(Deflater(parameters: DeflateParameters()), "expected a deflater")
        assertRejects(frame(0x1, deflater.deflate([0x61, 0xC0, 0xAF]), rsv: 0x40), closeCode: 1007, inflater: true,
                      feedings: [.whole])
    }

    func testCorruptCompressedDataIsRejectedWith1007() {
        assertRejects(frame(0x2, [0xFF, 0xFF, 0xFF, 0xFF], rsv: 0x40), closeCode: 1007,
                      error: .invalidCompressedData, inflater: true)
    }

    // MARK: close frames

    func testCloseWithOneBytePayloadIsRejectedWith1002() {
        assertRejects(frame(0x8, [0x03]), closeCode: 1002, error: .invalidClosePayload)
    }

    func testInvalidCloseCodesAreRejectedWith1002() {
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
            assertRejects(frame(0x8, closePayload(code)), closeCode: 1002, error: .invalidCloseCode(code),
                          feedings: [.whole, .byteByByte])
        }
    }

    func testValidCloseCodesAreAccepted() {
        for code: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999] {
            assertEvents(frame(0x8, closePayload(code, Array("r".utf8))), [.close(CloseCode(code), "r")],
                         feedings: [.whole, .byteByByte])
        }
    }

    func testCloseReasonWithInvalidUTF8IsRejectedWith1007() {
        assertRejects(frame(0x8, closePayload(1000, [0x6F, 0x6B, 0xC3])), closeCode: 1007, error: .invalidUTF8)
        assertRejects(frame(0x8, closePayload(1000, [0xED, 0xB0, 0x80])), closeCode: 1007, error: .invalidUTF8)
    }

    // MARK: size limits (1009)

    func testMessageOverMaxSizeIsRejectedAtTheHeaderBeforePayloadArrives() {
        let limit = 1_000
        for length in [limit + 1, 70_000] {
            let bytes = frame(0x2, [UInt8](repeating: 0, count: length))
            let headerLength = length < 0x10000 ? 8 : 14
            // Only the header is fed.
            assertRejects(Array(bytes.prefix(headerLength)), closeCode: 1009, error: .messageTooBig(limit: limit),
                          maxMessageSize: limit, feedings: [.whole, .byteByByte])
        }
        // A declared 64-bit length far beyond memory: refused on the header alone.
        let huge: [UInt8] = [0x82, 0x80 | 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]
        assertRejects(huge, closeCode: 1009, maxMessageSize: limit, feedings: [.whole, .byteByByte])
    }

    func testFragmentedMessageOverMaxSizeIsRejectedAtTheHeaderOfTheFragmentThatCrossesIt() {
        let limit = 1_000
        let first = frame(0x2, [UInt8](repeating: 1, count: 600), fin: false)
        let second = frame(0x0, [UInt8](repeating: 2, count: 401))
        assertRejects(first + Array(second.prefix(8)), closeCode: 1009, error: .messageTooBig(limit: limit),
                      maxMessageSize: limit)
    }

    func testMessageExactlyAtMaxSizeIsAccepted() {
        let payload = [UInt8](repeating: 7, count: 1_000)
        assertEvents(frame(0x2, Array(payload.prefix(400)), fin: false) + frame(0x0, Array(payload.suffix(600))),
                     [.message(.binary, payload)], maxMessageSize: 1_000, feedings: [.whole, .random(seed: 3)])
    }

    func testCompressionBombIsRejectedWith1009() throws {
        let deflater = try XCTUnwrap(Deflater(parameters: DeflateParameters()), "expected a deflater")
        let bomb = deflater.deflate([UInt8](repeating: 0, count: 10 << 20))
        XCTAssertLessThan(bomb.count, 1 << 20, "fixture: expected 10 MiB of zeros to deflate far below 1 MiB")
        assertRejects(frame(0x2, bomb, rsv: 0x40), closeCode: 1009, error: .messageTooBig(limit: 1 << 20),
                      maxMessageSize: 1 << 20, inflater: true, feedings: [.whole, .random(seed: 11)])
    }

    // MARK: state after errors

    /// `isFinished` is documented as "true once a close frame was received or a rule was broken;
    /// later input is ignored".
    func testReaderIsFinishedAfterAProtocolError() {
        var reader = WebSocketReader(maxMessageSize: 1 << 20)
        XCTAssertThrowsError(try Self.feed(&reader, frame(0x1, [1], masked: false), feeding: .whole),
                             "expected an unmasked frame to be rejected")
        XCTAssertTrue(reader.isFinished, "expected isFinished after a broken rule, as its documentation says")
        XCTAssertNoThrow(try Self.feed(&reader, text("ignored"), feeding: .whole),
                         "expected input after a broken rule to be ignored")
    }

    func testReaderIsFinishedAfterClose() throws {
        var reader = WebSocketReader(maxMessageSize: 1 << 20)
        _ = try Self.feed(&reader, frame(0x8, []), feeding: .whole)
        XCTAssertTrue(reader.isFinished, "expected isFinished after a close frame")
    }

    func testErrorCloseCodes() {
        XCTAssertEqual(WebSocketError.invalidUTF8.closeCode.rawValue, 1007, "expected invalidUTF8 -> 1007")
        XCTAssertEqual(WebSocketError.invalidCompressedData.closeCode.rawValue, 1007, "expected invalidCompressedData -> 1007")
        XCTAssertEqual(WebSocketError.messageTooBig(limit: 1).closeCode.rawValue, 1009, "expected messageTooBig -> 1009")
        let protocolErrors: [WebSocketError] = [.unmaskedFrame, .reservedBitsSet, .reservedOpcode(3), .controlFrameTooLong,
                                                .fragmentedControlFrame, .unexpectedContinuation, .expectedContinuation,
                                                .invalidLength, .invalidClosePayload, .invalidCloseCode(1005),
                                                .compressedContinuation]
        for e in protocolErrors {
            XCTAssertEqual(e.closeCode.rawValue, 1002, "expected \(e) -> 1002")
            XCTAssertLessThanOrEqual(e.reason.utf8.count, 123, "expected the reason for \(e) to fit a close frame")
        }
    }
}
