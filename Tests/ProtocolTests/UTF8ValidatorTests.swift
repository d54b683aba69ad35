import XCTest
@testable import Protocol

final class UTF8ValidatorTests: XCTestCase {

    private func reference(_ bytes: [UInt8]) -> Bool {
        String(validating: bytes, as: UTF8.self) != nil
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16, uppercase: true) }.joined(separator: " ")
    }

    /// Validates `bytes` fed in two parts split at `cut`.
    private func validateSplit(_ bytes: [UInt8], at cut: Int) -> Bool {
        var v = UTF8Validator()
        let a = v.feed(Array(bytes[..<cut]))
        let b = v.feed(Array(bytes[cut...]))
        return a && b && v.isComplete
    }

    /// Random bytes biased toward multi-byte sequences: lead bytes of every class, continuation
    /// bytes, valid encoded scalars (including the boundaries around surrogates and U+10FFFF)
    /// and some plain ASCII.
    private func randomBytes(_ rng: inout SplitMix64) -> [UInt8] {
        let length = Int(rng.next() % 24)
        var out: [UInt8] = []
        while out.count < length {
            switch rng.next() % 10 {
            case 0: out.append(UInt8(rng.next() % 0x80))                           // ASCII
            case 1: out.append(0x80 | UInt8(rng.next() % 0x40))                    // continuation
            case 2: out.append(0xC0 | UInt8(rng.next() % 0x20))                    // 2-byte leads incl. C0/C1
            case 3: out.append(0xE0 | UInt8(rng.next() % 0x10))                    // 3-byte leads incl. E0/ED
            case 4: out.append(0xF0 | UInt8(rng.next() % 0x10))                    // 4-byte leads incl. F4..FF
            case 5: out.append(rng.byte())                                         // anything
            default:
                // A valid scalar, often near a boundary, sometimes truncated.
                let boundaries: [UInt32] = [0x7F, 0x80, 0x7FF, 0x800, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x10FFFF]
                var value = rng.next() % 2 == 0
                    ? boundaries[Int(rng.next() % UInt64(boundaries.count))]
                    : UInt32(rng.next() % 0x110000)
                if (0xD800...0xDFFF).contains(value) { value = 0xFFFD }
                var encoded = Array(String(Unicode.Scalar(value)!).utf8)
                if rng.next() % 8 == 0, encoded.count > 1 { encoded.removeLast() }
                out.append(contentsOf: encoded)
            }
        }
        return out
    }

    func testAgreesWithStandardLibraryOnRandomBytesWholeAndSplitAtEveryPosition() {
        var rng = SplitMix64(seed: 0x0DDBA11)
        var validCount = 0
        for _ in 0..<4_000 {
            let bytes = randomBytes(&rng)
            let expected = reference(bytes)
            if expected { validCount += 1 }
            XCTAssertEqual(UTF8Validator.isValid(bytes), expected,
                           "expected isValid to be \(expected) for [\(hex(bytes))]")
            for cut in 0...bytes.count {
                XCTAssertEqual(validateSplit(bytes, at: cut), expected,
                               "expected \(expected) for [\(hex(bytes))] split at \(cut)")
            }
            var v = UTF8Validator()
            let fedByteByByte = bytes.allSatisfy { v.feed([$0]) } && v.isComplete
            XCTAssertEqual(fedByteByByte, expected, "expected \(expected) for [\(hex(bytes))] fed byte by byte")
        }
        // The generator must exercise both outcomes to be meaningful.
        XCTAssertGreaterThan(validCount, 400, "fixture: expected a fair share of valid strings")
        XCTAssertLessThan(validCount, 3_600, "fixture: expected a fair share of invalid strings")
    }

    func testAgreesWithStandardLibraryAroundTheASCIIFastPath() {
        // Long ASCII runs with one non-ASCII sequence at every offset, to cross 8-byte words.
        let inserts: [[UInt8]] = [[0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80], [0x80], [0xC3], [0xED, 0xA0, 0x80], [0xFF]]
        for insert in inserts {
            for offset in 0...40 {
                let bytes = [UInt8](repeating: 0x61, count: offset) + insert + [UInt8](repeating: 0x62, count: 40 - offset)
                let expected = reference(bytes)
                XCTAssertEqual(UTF8Validator.isValid(bytes), expected,
                               "expected \(expected) for [\(hex(insert))] after \(offset) ASCII bytes")
                for cut in stride(from: 0, through: bytes.count, by: 3) {
                    XCTAssertEqual(validateSplit(bytes, at: cut), expected,
                                   "expected \(expected) for [\(hex(insert))] after \(offset) ASCII bytes, split at \(cut)")
                }
            }
        }
    }

    func testKnownInvalidSequences() {
        let cases: [(String, [UInt8])] = [
            ("overlong NUL C0 80", [0xC0, 0x80]),
            ("overlong C1 BF", [0xC1, 0xBF]),
            ("overlong 3-byte E0 80 80", [0xE0, 0x80, 0x80]),
            ("overlong 3-byte E0 9F BF", [0xE0, 0x9F, 0xBF]),
            ("overlong 4-byte F0 80 80 80", [0xF0, 0x80, 0x80, 0x80]),
            ("overlong 4-byte F0 8F BF BF", [0xF0, 0x8F, 0xBF, 0xBF]),
            ("high surrogate ED A0 80", [0xED, 0xA0, 0x80]),
            ("low surrogate ED BF BF", [0xED, 0xBF, 0xBF]),
            ("above U+10FFFF F4 90 80 80", [0xF4, 0x90, 0x80, 0x80]),
            ("F5 lead", [0xF5, 0x80, 0x80, 0x80]),
            ("FE", [0xFE]),
            ("FF", [0xFF]),
            ("lone continuation", [0x80]),
            ("truncated 2-byte", [0xC3]),
            ("truncated 3-byte", [0xE2, 0x82]),
            ("truncated 4-byte", [0xF0, 0x9F, 0x98]),
            ("truncated then ASCII", [0xE2, 0x82, 0x41]),
            ("too many continuations", [0xC3, 0xA9, 0xA9]),
        ]
        for (name, bytes) in cases {
            XCTAssertFalse(reference(bytes), "fixture: the standard library should reject \(name)")
            XCTAssertFalse(UTF8Validator.isValid(bytes), "expected \(name) [\(hex(bytes))] to be invalid")
        }
    }

    func testKnownValidSequences() {
        let cases: [(String, [UInt8])] = [
            ("empty", []),
            ("ASCII", Array("hello".utf8)),
            ("U+0080", [0xC2, 0x80]),
            ("U+07FF", [0xDF, 0xBF]),
            ("U+0800", [0xE0, 0xA0, 0x80]),
            ("U+D7FF", [0xED, 0x9F, 0xBF]),
            ("U+E000", [0xEE, 0x80, 0x80]),
            ("U+FFFF", [0xEF, 0xBF, 0xBF]),
            ("U+10000", [0xF0, 0x90, 0x80, 0x80]),
            ("U+10FFFF", [0xF4, 0x8F, 0xBF, 0xBF]),
            ("NUL", [0x00]),
        ]
        for (name, bytes) in cases {
            XCTAssertTrue(UTF8Validator.isValid(bytes), "expected \(name) [\(hex(bytes))] to be valid")
        }
    }

    func testTruncatedSequenceIsIncompleteButNotRejected() {
        var v = UTF8Validator()
        XCTAssertTrue(v.feed([0x61, 0xF0, 0x9F]), "expected a valid prefix of a code point not to be rejected")
        XCTAssertFalse(v.isComplete, "expected isComplete to be false in the middle of a code point")
        XCTAssertTrue(v.feed([0x98, 0x80]), "expected the rest of the code point to be accepted")
        XCTAssertTrue(v.isComplete, "expected isComplete once the code point is finished")
    }

    func testRejectionIsSticky() {
        var v = UTF8Validator()
        XCTAssertFalse(v.feed([0xC0, 0x80]), "expected an overlong sequence to be rejected")
        XCTAssertFalse(v.feed(Array("plain ascii text".utf8)), "expected later valid input to keep reporting failure")
        XCTAssertFalse(v.feed([0x61]), "expected a later single ASCII byte to keep reporting failure")
        XCTAssertFalse(v.isComplete, "expected isComplete to stay false after a rejection")
        v.reset()
        XCTAssertTrue(v.feed([0x61]), "expected reset to clear the failure")
        XCTAssertTrue(v.isComplete, "expected a complete state after reset and ASCII")
    }

    /// `feed` is documented to return false "once an invalid sequence has been seen"; an
    /// empty read after a rejection is no exception.
    func testEmptyFeedAfterRejectionStillReportsFailure() {
        var v = UTF8Validator()
        XCTAssertFalse(v.feed([0xFF]), "expected 0xFF to be rejected")
        let empty = [UInt8](repeating: 0, count: 8)
        let result = empty.withUnsafeBytes { v.feed(UnsafeRawBufferPointer(rebasing: $0[0..<0])) }
        XCTAssertFalse(result, "expected an empty feed after a rejection to keep returning false")
        XCTAssertFalse(v.feed([UInt8]()), "expected an empty array feed after a rejection to keep returning false")
    }
}
