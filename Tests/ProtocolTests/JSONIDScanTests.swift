import XCTest
@testable import Protocol

// The request-id scan: finds the top-level integer "id" the way the parser would read it, skips
// nested ids and strings that look like keys, and gives up (nil) rather than guess.
final class JSONIDScanTests: XCTestCase {
    private func scan(_ text: String) -> Int64? { JSONIDScan.topLevelID(Array(text.utf8)) }

    func testFindsTheTopLevelIDWhereverItStands() {
        XCTAssertEqual(scan(#"{"id":7,"op":"ping"}"#), 7)
        XCTAssertEqual(scan(#" { "op" : "send" , "text" : "x" , "id" : 42 } "#), 42)
        XCTAssertEqual(scan("{\n\t\"id\"\r\n:\n-3}"), -3)
        XCTAssertEqual(scan(#"{"id":9223372036854775807}"#), Int64.max)
        XCTAssertEqual(scan(#"{"id":-9223372036854775808}"#), Int64.min)
        XCTAssertEqual(scan(#"{"id":0}"#), 0)
    }

    func testAnIDAfterALargeBodyIsFound() {
        let text = String(repeating: "a", count: 60_000)
        let nested = String(repeating: "[", count: 50) + "{\"id\":1}" + String(repeating: "]", count: 50)
        XCTAssertEqual(scan(#"{"op":"send","text":"\#(text)","data":\#(nested),"id":123456}"#), 123456)
    }

    func testNestedIDsAndLookalikesInStringsDoNotCount() {
        XCTAssertNil(scan(#"{"data":{"id":5}}"#))
        XCTAssertNil(scan(#"{"list":[{"id":5}],"op":"x"}"#))
        XCTAssertEqual(scan(#"{"text":"\",\"id\":5,\"x\":\"","id":6}"#), 6, "an escaped quote does not end the string")
        XCTAssertEqual(scan(#"{"text":"a}b]c{","id":8}"#), 8, "brackets inside strings do not change depth")
        XCTAssertEqual(scan(#"{"obj":{"s":"}","id":1},"id":2}"#), 2)
        XCTAssertNil(scan(#"{"idx":1}"#))
        XCTAssertNil(scan(#"{"i":1}"#))
    }

    func testNonIntegerOrMalformedGivesNil() {
        XCTAssertNil(scan(#"{"id":"7"}"#))
        XCTAssertNil(scan(#"{"id":1.5}"#))
        XCTAssertNil(scan(#"{"id":1e3}"#))
        XCTAssertNil(scan(#"{"id":01}"#))
        XCTAssertNil(scan(#"{"id":-}"#))
        XCTAssertNil(scan(#"{"id":9223372036854775808}"#), "over Int64")
        XCTAssertNil(scan(#"{"id":null}"#))
        XCTAssertNil(scan(#"[{"id":1}]"#), "not an object")
        XCTAssertNil(scan(""))
        XCTAssertNil(scan("{"))
        XCTAssertNil(scan(#"{"op":"x" "id":1}"#), "a missing comma stops the scan")
        XCTAssertNil(scan(#"{"text":"unterminated,"id":1}"#))
        XCTAssertNil(scan("{\"te\u{01}xt\":1,\"id\":1}"), "a control character in a string stops the scan")
    }

    func testAnIDBeforeLaterGarbageIsStillFound() {
        // Invalid JSON after the id: the error reply can still carry it.
        XCTAssertEqual(scan(#"{"id":3,"op":"send","text":"#), 3)
        XCTAssertEqual(scan(#"{"id":4,,}"#), 4)
    }

    func testOnlyTheFirstLimitBytesAreLookedAt() {
        let text = #"{"id":1234,"op":"x"}"#
        XCTAssertEqual(JSONIDScan.topLevelID(Array(text.utf8), limit: 11), 1234)
        XCTAssertNil(JSONIDScan.topLevelID(Array(text.utf8), limit: 8), "a number cut by the limit is not an id")
        XCTAssertNil(JSONIDScan.topLevelID(Array(#"{"op":"x","id":1}"#.utf8), limit: 10))
        XCTAssertNil(scan(#"{"id":5"#), "nothing after the number: it may have been cut")
    }

    func testAgreesWithTheParserOnRandomRequests() {
        var rng = SystemRandomNumberGenerator()
        let keys = ["id", "op", "text", "data", "channel", "i", "idd"]
        for _ in 0..<500 {
            var fields: [String] = []
            var used = Set<String>()
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                let k = keys.randomElement(using: &rng)!
                guard used.insert(k).inserted else { continue }
                let v: String
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: v = "\(Int64.random(in: -1_000_000...1_000_000, using: &rng))"
                case 1: v = #""a\"b{[""#
                case 2: v = #"{"id":1,"x":[1,2,{"id":"q"}]}"#
                case 3: v = "1.25"
                default: v = "[true,false,null]"
                }
                fields.append("\"\(k)\":\(v)")
            }
            let text = "{" + fields.joined(separator: ",") + "}"
            let parsed = try! JSONParser.parse(text)
            let expected: Int64? = { if case .int(let n)? = parsed["id"] { return n } else { return nil } }()
            XCTAssertEqual(scan(text), expected, text)
        }
    }
}
