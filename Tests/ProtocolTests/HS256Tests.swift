import XCTest
@testable import Protocol

/// HMAC-SHA256 against RFC 4231's test vectors: a short key, a key shorter than the hash, a
/// key longer than a block (hashed first), and a key of exactly one block.
final class HS256Tests: XCTestCase {
    private func hex(_ bytes: [UInt8]?) -> String? { bytes.map { $0.map { String(format: "%02x", $0) }.joined() } }

    func testRFC4231Vectors() {
        XCTAssertEqual(hex(HS256.mac(key: [UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8)[...])),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", "test case 1")
        XCTAssertEqual(hex(HS256.mac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)[...])),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "test case 2")
        XCTAssertEqual(hex(HS256.mac(key: [UInt8](repeating: 0xaa, count: 131),
                                     Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)[...])),
                       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", "test case 6")
        let text = "This is a test using a larger than block-size key and a larger than block-size data. "
            + "The key needs to be hashed before being used by the HMAC algorithm."
        XCTAssertEqual(hex(HS256.mac(key: [UInt8](repeating: 0xaa, count: 131), Array(text.utf8)[...])),
                       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", "test case 7")
    }

    func testOneKeyGivesTheSameMACEveryTimeAndAnEmptyKeyNone() {
        let key = HS256Key([UInt8](repeating: 0x11, count: 64))
        let data = Array("header.payload".utf8)[...]
        XCTAssertEqual(key?.mac(data), key?.mac(data), "the prepared states are copied, not used up")
        XCTAssertEqual(key?.mac(data), HS256.mac(key: [UInt8](repeating: 0x11, count: 64), data))
        XCTAssertNotEqual(key?.mac(data), HS256.mac(key: [UInt8](repeating: 0x11, count: 63), data))
        XCTAssertNil(HS256Key([]))
        XCTAssertNil(HS256.mac(key: [], data))
    }
}
