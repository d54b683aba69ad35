import XCTest
@testable import Core

// Log values: plain ones as they are, the rest quoted and escaped so that no value, whatever a
// client or backend put in it, can end its line or forge another field.
final class LogTests: XCTestCase {
    func testPlainValuesGoAsTheyAre() {
        XCTAssertEqual(Log.quote("1.0.17"), "1.0.17")
        XCTAssertEqual(Log.quote("127.0.0.1:41760"), "127.0.0.1:41760")
        XCTAssertEqual(Log.quote("/v1/stats"), "/v1/stats")
        XCTAssertEqual(Log.quote(#"a\b"#), #"a\b"#, "a backslash alone needs no quotes")
        XCTAssertEqual(Log.quote("café"), "café", "non-ASCII text is kept")
    }

    func testValuesThatWouldBreakTheLineAreQuotedAndEscaped() {
        XCTAssertEqual(Log.quote(""), #""""#)
        XCTAssertEqual(Log.quote("wrong key"), #""wrong key""#)
        XCTAssertEqual(Log.quote("a=b"), #""a=b""#)
        XCTAssertEqual(Log.quote(#"say "hi"\"#), #""say \"hi\"\\""#)
        XCTAssertEqual(Log.quote("x\ny"), #""x\ny""#)
        // "\r\n" is one Character in Swift: it must still be escaped byte by byte.
        XCTAssertEqual(Log.quote("x\r\nlevel=error event=forged"), #""x\r\nlevel=error event=forged""#)
        XCTAssertEqual(Log.quote("tab\there"), #""tab\there""#)
        XCTAssertEqual(Log.quote("bell\u{7}del\u{7F}"), #""bell\u0007del\u007f""#)
        for v in ["a\r\nb", "\r", "x\u{0}y", "é\n"] {
            let q = Log.quote(v)
            XCTAssertFalse(q.utf8.contains { $0 < 0x20 || $0 == 0x7F }, "no control byte left in \(q)")
        }
    }
}
