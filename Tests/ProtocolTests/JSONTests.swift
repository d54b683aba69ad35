import XCTest
@testable import Protocol

// JSON: round trips of every value kind, each rejection rule of the parser, the writer's
// escaping and number forms, and a seeded fuzz loop over random and mutated input.

final class JSONTests: XCTestCase {

    // MARK: helpers

    private func parse(_ text: String, maxDepth: Int = 32, maxBytes: Int = 1 << 20,
                       file: StaticString = #filePath, line: UInt = #line) -> JSON? {
        do {
            return try JSONParser.parse(text, maxDepth: maxDepth, maxBytes: maxBytes)
        } catch {
            XCTFail("expected \(text.debugDescription) to parse, got \(error)", file: file, line: line)
            return nil
        }
    }

    private func assertRejects(_ bytes: [UInt8], _ expected: JSONError, maxDepth: Int = 32, maxBytes: Int = 1 << 20,
                               file: StaticString = #filePath, line: UInt = #line) {
        do {
            let v = try JSONParser.parse(bytes, maxDepth: maxDepth, maxBytes: maxBytes)
            XCTFail("expected \(String(decoding: bytes, as: UTF8.self).debugDescription) to be rejected with \(expected), parsed \(v)",
                    file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, "wrong rejection for \(String(decoding: bytes, as: UTF8.self).debugDescription)",
                           file: file, line: line)
        }
    }

    private func assertRejects(_ text: String, _ expected: JSONError, maxDepth: Int = 32, maxBytes: Int = 1 << 20,
                               file: StaticString = #filePath, line: UInt = #line) {
        assertRejects(Array(text.utf8), expected, maxDepth: maxDepth, maxBytes: maxBytes, file: file, line: line)
    }

    private func nested(_ depth: Int) -> String {
        String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
    }

    private let envelope = #"{"type":"push","id":"7f3a9c2e","service":"website","seq":1842,"#
        + #""ts":1732530000.25,"ok":true,"ack":null,"data":{"title":"Nouvelle réservation","#
        + #""body":"Table pour 4 \u00e0 20h \"terrasse\"","tags":["booking","urgent"],"score":-0.5e3}}"#

    // MARK: round trips

    func testEveryValueKindRoundTripsThroughTextAndBack() {
        let values: [JSON] = [
            nil, true, false, 0, -1, 42, .int(Int64.max), .int(Int64.min),
            2.5, -0.001, 1.5e300, .double(.leastNonzeroMagnitude), .double(9_007_199_254_740_993.0 * 4),
            "", "plain", "quote \" backslash \\ slash /", "line\nbreak\ttab\r\u{8}\u{C}\u{0}\u{1F}",
            "héllo 日本語 😀", "\u{2028}\u{2029}",
            [], [1, "two", nil, [true, [false]]],
            [:], ["id": 7, "ok": true, "nested": ["list": [1, 2.5, "x"], "empty": [:]]],
        ]
        for v in values {
            let text = v.serialized()
            do {
                let back = try JSONParser.parse(text)
                XCTAssertEqual(back, v, "expected \(v) to survive serialize+parse, text was \(v.text)")
            } catch {
                XCTFail("expected the serialization of \(v) to parse, got \(error) for \(v.text)")
            }
        }
    }

    func testSerializationIsCompactInStoredKeyOrder() {
        let v: JSON = ["z": 1, "a": [true, nil], "m": ["k": "v"]]
        XCTAssertEqual(v.text, #"{"z":1,"a":[true,null],"m":{"k":"v"}}"#, "expected compact output with keys as inserted")
        XCTAssertEqual(v.serialized(), Array(v.text.utf8), "expected text to be the serialized bytes")
    }

    func testParsedObjectKeepsKeyOrder() {
        let v = parse(#" { "b" : 1 , "a" : 2 , "c" : [ ] } "#)
        XCTAssertEqual(v?.objectValue?.keys, ["b", "a", "c"], "expected keys in input order")
        XCTAssertEqual(v?.text, #"{"b":1,"a":2,"c":[]}"#, "expected re-serialization in input order")
    }

    func testScalarsAtTopLevelWithSurroundingWhitespace() {
        XCTAssertEqual(parse(" \t\r\n null \n"), .null, "expected null")
        XCTAssertEqual(parse("true"), .bool(true), "expected true")
        XCTAssertEqual(parse("false"), .bool(false), "expected false")
        XCTAssertEqual(parse("\"s\""), .string("s"), "expected a string")
        XCTAssertEqual(parse("-12"), .int(-12), "expected an int")
    }

    func testEnvelopeParsesWithTheRightTypes() {
        guard let v = parse(envelope) else { return }
        XCTAssertEqual(v["type"]?.stringValue, "push", "expected type push")
        XCTAssertEqual(v["seq"]?.intValue, 1842, "expected seq as an integer")
        XCTAssertEqual(v["ts"]?.doubleValue, 1732530000.25, "expected ts as a double")
        XCTAssertEqual(v["ok"]?.boolValue, true, "expected ok true")
        XCTAssertEqual(v["ack"]?.isNull, true, "expected ack null")
        XCTAssertEqual(v["data"]?["body"]?.stringValue, "Table pour 4 à 20h \"terrasse\"", "expected escapes decoded")
        XCTAssertEqual(v["data"]?["tags"]?.arrayValue?.count, 2, "expected two tags")
        XCTAssertEqual(v["data"]?["score"], .double(-500), "expected -0.5e3 as -500")
        XCTAssertNil(v["missing"], "expected nil for a missing key")
        XCTAssertNil(v["type"]?["x"], "expected nil for a key on a string")
    }

    // MARK: numbers

    func testIntegersWithinInt64AreIntsAndBeyondAreDoubles() {
        guard let max = parse("9223372036854775807"), let over = parse("9223372036854775808"),
              let min = parse("-9223372036854775808"), let under = parse("-9223372036854775809") else { return }
        XCTAssertEqual(max, .int(Int64.max), "expected Int64.max as .int")
        XCTAssertEqual(min, .int(Int64.min), "expected Int64.min as .int")
        guard case .double(let d) = over else { return XCTFail("expected Int64.max+1 as .double, got \(over)") }
        XCTAssertEqual(d, 9_223_372_036_854_775_808.0, "expected 2^63")
        guard case .double = under else { return XCTFail("expected Int64.min-1 as .double, got \(under)") }
        XCTAssertNotEqual(over, .int(Int64.max), "expected 2^63 not to equal Int64.max")
    }

    func testFractionsAndExponentsAreDoubles() {
        for text in ["1.0", "1e2", "1E+2", "-0.0", "0.5", "2e-3"] {
            guard let v = parse(text) else { continue }
            guard case .double = v else { XCTFail("expected \(text) as .double, got \(v)"); continue }
        }
        XCTAssertEqual(parse("1e2"), .double(100), "expected 1e2 == 100")
        XCTAssertEqual(parse("-0"), .int(0), "expected -0 as int 0")
        XCTAssertEqual(parse("1e-400"), .double(0), "expected underflow to zero, not an error")
    }

    func testNumbersCompareByValueAcrossIntAndDouble() {
        XCTAssertEqual(JSON.int(1), JSON.double(1), "expected 1 == 1.0")
        XCTAssertNotEqual(JSON.int(1), JSON.double(1.5), "expected 1 != 1.5")
        XCTAssertEqual(JSON.double(3).intValue, 3, "expected an integral double to give intValue")
        XCTAssertNil(JSON.double(1.5).intValue, "expected no intValue for 1.5")
        XCTAssertEqual(JSON.double(9_007_199_254_740_992).intValue, 9_007_199_254_740_992, "expected 2^53 to have intValue")
        XCTAssertNil(JSON.double(18_014_398_509_481_984).intValue, "expected no intValue beyond 2^53")
        XCTAssertEqual(JSON.int(5).doubleValue, 5, "expected an int to give doubleValue")
        XCTAssertNil(JSON.string("5").intValue, "expected no intValue for a string")
    }

    // MARK: strings and escapes

    func testSimpleEscapesDecode() {
        XCTAssertEqual(parse(#""\" \\ \/ \b \f \n \r \t""#), .string("\" \\ / \u{8} \u{C} \n \r \t"),
                       "expected each two-character escape decoded")
    }

    func testUnicodeEscapesIncludingSurrogatePairDecode() {
        XCTAssertEqual(parse(#""\u0041\u00e9\u00E9\u65E5""#), .string("Aéé日"), "expected BMP escapes decoded, either hex case")
        XCTAssertEqual(parse(#""\ud83d\ude00""#), .string("😀"), "expected a surrogate pair to decode to U+1F600")
        XCTAssertEqual(parse(#""a\u0000b""#), .string("a\u{0}b"), "expected \\u0000 to give NUL")
        XCTAssertEqual(parse(#""x😀\ny""#), .string("x😀\ny"), "expected raw UTF-8 kept around an escape")
        XCTAssertEqual(parse("\"\u{7F}\""), .string("\u{7F}"), "expected DEL allowed raw")
    }

    // MARK: rejections

    func testEmptyAndTruncatedInputIsUnexpectedEnd() {
        for text in ["", "   ", "[", "[1,", "{", #"{"a""#, #"{"a":"#, #""abc"#, #""ab\"#, #""\u12"#, "tru", "nul", #"{"a":1"#] {
            assertRejects(text, .unexpectedEnd)
        }
    }

    func testTrailingCommaIsRejected() {
        assertRejects("[1,2,]", .unexpectedCharacter(offset: 5))
        assertRejects(#"{"a":1,}"#, .unexpectedCharacter(offset: 7))
        assertRejects("[,]", .unexpectedCharacter(offset: 1))
    }

    func testMalformedStructureIsUnexpectedCharacter() {
        assertRejects("[1 2]", .unexpectedCharacter(offset: 3))
        assertRejects("{a:1}", .unexpectedCharacter(offset: 1))
        assertRejects(#"{"a" 1}"#, .unexpectedCharacter(offset: 5))
        assertRejects(#"{"a":1]"#, .unexpectedCharacter(offset: 6))
        assertRejects("[1}", .unexpectedCharacter(offset: 2))
        assertRejects("'a'", .unexpectedCharacter(offset: 0))
        assertRejects("// c\n1", .unexpectedCharacter(offset: 0))
        assertRejects("/* c */ 1", .unexpectedCharacter(offset: 0))
        assertRejects("trUe", .unexpectedCharacter(offset: 2))
        assertRejects("+1", .unexpectedCharacter(offset: 0))
        assertRejects(".5", .unexpectedCharacter(offset: 0))
    }

    func testNaNAndInfinityAreRejected() {
        assertRejects("NaN", .unexpectedCharacter(offset: 0))
        assertRejects("Infinity", .unexpectedCharacter(offset: 0))
        assertRejects("-Infinity", .invalidNumber(offset: 0))
        assertRejects("[nan]", .unexpectedCharacter(offset: 2))
    }

    func testOnlyRFCWhitespaceIsAllowed() {
        assertRejects("\u{0B}1", .unexpectedCharacter(offset: 0)) // vertical tab
        assertRejects("\u{0C}1", .unexpectedCharacter(offset: 0)) // form feed
        assertRejects("\u{A0}1", .unexpectedCharacter(offset: 0)) // no-break space
        assertRejects("[1,\u{FEFF}2]", .unexpectedCharacter(offset: 3)) // BOM
    }

    func testLeadingZeroIsInvalidNumber() {
        assertRejects("01", .invalidNumber(offset: 0))
        assertRejects("-01", .invalidNumber(offset: 0))
        assertRejects("[1,00]", .invalidNumber(offset: 3))
    }

    func testIncompleteNumbersAreInvalidNumber() {
        assertRejects("-", .invalidNumber(offset: 0))
        assertRejects("1e", .invalidNumber(offset: 0))
        assertRejects("1e+", .invalidNumber(offset: 0))
        assertRejects("1.", .invalidNumber(offset: 0))
        assertRejects("1.e5", .invalidNumber(offset: 0))
        assertRejects("[-]", .invalidNumber(offset: 1))
        assertRejects("-a", .invalidNumber(offset: 0))
    }

    func testNumbersOverflowingDoubleAreInvalidNumber() {
        assertRejects("1e400", .invalidNumber(offset: 0))
        assertRejects("[-1e309]", .invalidNumber(offset: 1))
        assertRejects(String(repeating: "9", count: 400), .invalidNumber(offset: 0))
    }

    func testLoneSurrogateEscapesAreInvalidEscape() {
        assertRejects(#""\ud800""#, .invalidEscape(offset: 1))
        assertRejects(#""\udc00""#, .invalidEscape(offset: 1))
        assertRejects(#""ab\ud83dx""#, .invalidEscape(offset: 3))
        assertRejects(#""\ud83d\u0041""#, .invalidEscape(offset: 1))
        assertRejects(#""\ud83d\ud83d""#, .invalidEscape(offset: 1))
        assertRejects(#""\ude00\ud83d""#, .invalidEscape(offset: 1))
    }

    func testUnknownOrShortEscapesAreInvalidEscape() {
        assertRejects(#""\x""#, .invalidEscape(offset: 1))
        assertRejects(#""\U0041""#, .invalidEscape(offset: 1))
        assertRejects(#""\u12G4""#, .invalidEscape(offset: 1))
        assertRejects(#""\u12""#, .invalidEscape(offset: 1))
        assertRejects(#""a\'""#, .invalidEscape(offset: 2))
    }

    func testControlCharacterInStringIsRejected() {
        assertRejects([0x22, 0x61, 0x0A, 0x22], .unexpectedCharacter(offset: 2))
        assertRejects([0x22, 0x00, 0x22], .unexpectedCharacter(offset: 1))
        assertRejects([0x22, 0x1F, 0x22], .unexpectedCharacter(offset: 1))
        assertRejects([0x22, 0x5C, 0x6E, 0x09, 0x22], .unexpectedCharacter(offset: 3)) // after an escape
    }

    func testInvalidUTF8IsRejected() {
        assertRejects([0x22, 0xFF, 0x22], .invalidUTF8)
        assertRejects([0x22, 0xC0, 0xAF, 0x22], .invalidUTF8)       // overlong '/'
        assertRejects([0x22, 0xED, 0xA0, 0x80, 0x22], .invalidUTF8) // encoded surrogate
        assertRejects([0x22, 0xE2, 0x82, 0x22], .invalidUTF8)       // truncated sequence
        assertRejects([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], .invalidUTF8) // above U+10FFFF
        assertRejects([0x5B, 0x31, 0x5D, 0x80], .invalidUTF8)       // outside a string too
    }

    func testDepthLimitCountsNestedContainers() {
        XCTAssertNotNil(parse(nested(32)), "expected 32 nested arrays accepted with maxDepth 32")
        assertRejects(nested(33), .tooDeep(limit: 32))
        let objects = String(repeating: #"{"a":"#, count: 33) + "1" + String(repeating: "}", count: 33)
        assertRejects(objects, .tooDeep(limit: 32))
        let mixed32 = String(repeating: #"[{"a":"#, count: 16) + "1" + String(repeating: "}]", count: 16)
        XCTAssertNotNil(parse(mixed32), "expected 32 levels of alternating arrays and objects accepted")
        XCTAssertNotNil(parse("[]", maxDepth: 1), "expected [] to be depth 1")
        assertRejects("[[]]", .tooDeep(limit: 1), maxDepth: 1)
        XCTAssertEqual(parse("7", maxDepth: 0), .int(7), "expected a scalar to be depth 0")
        assertRejects(String(repeating: "[", count: 1 << 20), .tooDeep(limit: 32))
    }

    func testAnObjectOfScalarsAndOneThatTurnsNestedGiveTheSameAnswers() {
        // The reader takes an object of scalar members in one pass and reads anything else, or
        // anything wrong, again from the start with its general loop: one answer either way.
        XCTAssertEqual(parse(#" { "a" : 1 , "b" : "x\n" , "c" : false , "d" : null , "e" : -2.5 } "#)?.text,
                       #"{"a":1,"b":"x\n","c":false,"d":null,"e":-2.5}"#)
        XCTAssertEqual(parse(#"{"a":1,"b":"x","c":[true,null],"d":{"e":-2.5}}"#)?.text,
                       #"{"a":1,"b":"x","c":[true,null],"d":{"e":-2.5}}"#)
        XCTAssertEqual(parse(#"{"a":{}}"#)?.text, #"{"a":{}}"#)
        XCTAssertEqual(parse("{}")?.text, "{}")
        assertRejects(#"{"a":1}"#, .tooDeep(limit: 0), maxDepth: 0)
        assertRejects(#"{"a":1,"b":[1,]}"#, .unexpectedCharacter(offset: 14))
        assertRejects(#"{"a":1,"a":[1]}"#, .duplicateKey("a"))
        assertRejects(#"{"a":1} x"#, .trailingData(offset: 8))
        assertRejects(#"{"a":1"#, .unexpectedEnd)
        assertRejects(#"{"a":tru}"#, .unexpectedCharacter(offset: 8))
        assertRejects(#"{"a":1,}"#, .unexpectedCharacter(offset: 7))
        assertRejects(#"{"a" 1}"#, .unexpectedCharacter(offset: 5))
        assertRejects("{ ", .unexpectedEnd)
    }

    func testDuplicateKeysAreRejected() {
        assertRejects(#"{"a":1,"a":2}"#, .duplicateKey("a"))
        assertRejects(#"{"x":{"b":1,"c":2,"b":3}}"#, .duplicateKey("b"))
        assertRejects(#"{"\u0061":1,"a":2}"#, .duplicateKey("a"))
        // Past the size where the object switches to a hashed index.
        let many = (0..<40).map { #""k\#($0)":\#($0)"# }.joined(separator: ",")
        assertRejects("{" + many + #","k17":0}"#, .duplicateKey("k17"))
        XCTAssertEqual(parse("{" + many + "}")?.objectValue?.count, 40, "expected 40 distinct keys accepted")
        // Canonically equivalent keys render the same, so they count as one key.
        assertRejects("{\"\u{E9}\":1,\"e\u{301}\":2}", .duplicateKey("e\u{301}"))
    }

    func testTrailingDataIsRejected() {
        assertRejects("1 2", .trailingData(offset: 2))
        assertRejects("{}x", .trailingData(offset: 2))
        assertRejects("[1]]", .trailingData(offset: 3))
        assertRejects("nullx", .trailingData(offset: 4))
        assertRejects(#""a" "b""#, .trailingData(offset: 4))
    }

    func testInputOverMaxBytesIsTooLarge() {
        assertRejects("[1,2,3,4,5]", .tooLarge(limit: 10), maxBytes: 10)
        XCTAssertNotNil(parse("[1,2,3,44]", maxBytes: 10), "expected exactly maxBytes accepted")
        assertRejects(Array(repeating: 0x20, count: (1 << 20) + 1), .tooLarge(limit: 1 << 20))
    }

    func testEveryErrorHasAMessage() {
        let errors: [JSONError] = [.unexpectedEnd, .unexpectedCharacter(offset: 3), .invalidNumber(offset: 1),
                                   .invalidEscape(offset: 2), .invalidUTF8, .tooDeep(limit: 32),
                                   .trailingData(offset: 9), .duplicateKey("k"), .tooLarge(limit: 10)]
        for e in errors { XCTAssertFalse(e.message.isEmpty, "expected a message for \(e)") }
        XCTAssertEqual(JSONError.duplicateKey("id").message, #"duplicate key "id""#, "expected the key quoted")
    }

    // MARK: JSONObject

    func testJSONObjectSetReplaceAndRemove() {
        var o: JSONObject = ["a": 1, "b": 2]
        o["c"] = 3
        o["a"] = "one"
        XCTAssertEqual(o.keys, ["a", "b", "c"], "expected replacement in place and append at the end")
        o["b"] = nil
        XCTAssertEqual(o.keys, ["a", "c"], "expected b removed")
        XCTAssertEqual(o.count, 2, "expected two members")
        XCTAssertEqual(o["a"], "one", "expected the replaced value")
        o["missing"] = nil
        XCTAssertEqual(o.count, 2, "expected removing a missing key to change nothing")
        XCTAssertEqual(Array(o.map(\.key)), ["a", "c"], "expected iteration in stored order")
    }

    func testLargeJSONObjectLooksUpAndRemovesThroughItsIndex() {
        var o = JSONObject()
        for i in 0..<100 { o["k\(i)"] = .int(Int64(i)) }
        XCTAssertEqual(o["k73"], 73, "expected lookup in a large object")
        for i in stride(from: 0, to: 100, by: 2) { o["k\(i)"] = nil }
        XCTAssertEqual(o.count, 50, "expected half removed")
        XCTAssertEqual(o["k73"], 73, "expected lookup after removals")
        XCTAssertNil(o["k72"], "expected removed key gone")
        for i in 0..<45 { o["k\(2 * i + 1)"] = nil }
        XCTAssertEqual(o.keys, ["k91", "k93", "k95", "k97", "k99"], "expected the remaining keys in order")
        XCTAssertEqual(o["k95"], 95, "expected lookup after shrinking below the index threshold")
    }

    func testObjectEqualityIgnoresOrder() {
        let a: JSON = ["x": 1, "y": [2]]
        let b: JSON = ["y": [2], "x": 1]
        XCTAssertEqual(a, b, "expected objects with the same members equal regardless of order")
        XCTAssertNotEqual(a, ["x": 1], "expected a missing member to make them differ")
        XCTAssertNotEqual(a, ["x": 1, "y": [3]], "expected a different value to make them differ")
    }

    // MARK: writer

    func testWriterEscapesQuotesBackslashesAndControls() {
        var w = JSONWriter()
        w.string("a\"b\\c\nd\re\tf\u{8}g\u{C}h\u{0}i\u{1F}j\u{7F}")
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), #""a\"b\\c\nd\re\tf\bg\fh\u0000i\u001fj"# + "\u{7F}\"",
                       "expected short escapes, \\u00XX for other controls, DEL raw")
    }

    func testWriterEscapesLineAndParagraphSeparatorsOnly() {
        var w = JSONWriter()
        w.string("x\u{2028}y\u{2029}z é 😀 \u{2027}\u{202A}")
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), #""x\u2028y\u2029z é 😀 "# + "\u{2027}\u{202A}\"",
                       "expected U+2028/2029 escaped and other non-ASCII raw")
    }

    func testAResetWriterWritesAsAFreshOneAndKeepsItsBuffer() {
        func reference(_ w: inout JSONWriter) {
            w.beginObject(); w.key("a"); w.beginArray(); w.int(1); w.string("x"); w.endArray()
            w.key("b"); w.null(); w.endObject()
        }
        var fresh = JSONWriter()
        reference(&fresh)
        // Left in every odd state: right after a key, inside a member, and deeper than the 64
        // levels its flags hold in one word.
        var w = JSONWriter(capacity: 16)
        w.beginObject(); w.key("k")
        for _ in 0..<70 { w.beginArray(); w.int(1) }
        w.key("dangling")
        let grown = w.capacity
        w.reset()
        XCTAssertEqual(w.bytes, [])
        XCTAssertEqual(w.capacity, grown, "expected the buffer kept")
        reference(&w)
        XCTAssertEqual(w.bytes, fresh.bytes)
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), #"{"a":[1,"x"],"b":null}"#)
    }

    func testWriterInsertsCommasAndColons() {
        var w = JSONWriter()
        w.beginObject()
        w.key("a"); w.int(1)
        w.key("b"); w.beginArray(); w.int(Int(2)); w.bool(false); w.null(); w.beginObject(); w.endObject(); w.beginArray(); w.endArray(); w.endArray()
        w.key("c"); w.raw(Array(#"{"pre":"encoded"}"#.utf8))
        w.key("d"); w.value(["n": [1, nil]])
        w.endObject()
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self),
                       #"{"a":1,"b":[2,false,null,{},[]],"c":{"pre":"encoded"},"d":{"n":[1,null]}}"#,
                       "expected commas between members only")
    }

    func testWriterHandlesNestingBeyondSixtyFourLevels() {
        var w = JSONWriter()
        for _ in 0..<100 { w.beginArray(); w.int(1) }
        for _ in 0..<100 { w.endArray() }
        let expected = String(repeating: "[1,", count: 99) + "[1" + String(repeating: "]", count: 100)
        XCTAssertEqual(String(decoding: w.bytes, as: UTF8.self), expected, "expected commas right at every depth")
    }

    func testWriterNumberForms() {
        func written(_ body: (inout JSONWriter) -> Void) -> String {
            var w = JSONWriter()
            body(&w)
            return String(decoding: w.bytes, as: UTF8.self)
        }
        XCTAssertEqual(written { $0.int(Int64.min) }, "-9223372036854775808", "expected Int64.min")
        XCTAssertEqual(written { $0.int(Int64.max) }, "9223372036854775807", "expected Int64.max")
        XCTAssertEqual(written { $0.int(0) }, "0", "expected 0")
        XCTAssertEqual(written { $0.double(3.0) }, "3", "expected an integral double without fraction")
        XCTAssertEqual(written { $0.double(-0.0) }, "0", "expected negative zero as 0")
        XCTAssertEqual(written { $0.double(9_007_199_254_740_992) }, "9007199254740992", "expected 2^53 as an integer")
        XCTAssertEqual(written { $0.double(18_014_398_509_481_984) }, "1.8014398509481984e+16", "expected 2^54 in Swift's form")
        XCTAssertEqual(written { $0.double(0.1) }, "0.1", "expected shortest round-trip form")
        XCTAssertEqual(written { $0.double(1e-7) }, "1e-07", "expected exponent form")
        XCTAssertEqual(written { $0.double(.nan) }, "null", "expected NaN as null")
        XCTAssertEqual(written { $0.double(.infinity) }, "null", "expected infinity as null")
        XCTAssertEqual(written { $0.double(-.infinity) }, "null", "expected -infinity as null")
        for d in [0.1, 1e-7, 1.5e300, .leastNonzeroMagnitude, -2.5e-300, 123456.789, Double.greatestFiniteMagnitude] {
            let text = written { $0.double(d) }
            XCTAssertEqual(try? JSONParser.parse(text), .double(d), "expected \(text) to parse back to \(d)")
        }
    }

    // MARK: fuzz

    /// Random bytes biased toward JSON's own characters, so some inputs parse.
    private func randomInput(_ rng: inout SplitMix64) -> [UInt8] {
        let pieces: [[UInt8]] = ["{", "}", "[", "]", ",", ":", "\"", "\\", "\"a\"", "1", "-", "0", ".", "e",
                                 "true", "null", " ", "\\u", "d83d", "\"k\":", "😀", "1.5"].map { Array($0.utf8) }
        let length = Int(rng.next() % 40)
        var out: [UInt8] = []
        while out.count < length {
            if rng.next() % 3 == 0 {
                out.append(rng.byte())
            } else {
                out.append(contentsOf: pieces[Int(rng.next() % UInt64(pieces.count))])
            }
        }
        return out
    }

    private func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var out = input
        for _ in 0..<(1 + Int(rng.next() % 4)) {
            let at = Int(rng.next() % UInt64(out.count + 1))
            switch rng.next() % 5 {
            case 0 where at < out.count: out[at] = rng.byte()
            case 1 where at < out.count: out.remove(at: at)
            case 2: out.insert(rng.byte(), at: at)
            case 3 where at < out.count: out[at] ^= 1 << UInt8(rng.next() % 8)
            default:
                let structural: [UInt8] = Array("{}[],:\"\\0-e.".utf8)
                out.insert(structural[Int(rng.next() % UInt64(structural.count))], at: at)
            }
        }
        return out
    }

    /// Parses `input`; whatever parses must come back unchanged through serialize+parse.
    private func check(_ input: [UInt8], counts parsed: inout Int) {
        guard let v = try? JSONParser.parse(input) else { return }
        parsed += 1
        do {
            let back = try JSONParser.parse(v.serialized())
            XCTAssertEqual(back, v, "expected a round trip for \(String(decoding: input, as: UTF8.self).debugDescription)")
        } catch {
            XCTFail("expected the serialization \(v.text.debugDescription) to parse, got \(error)")
        }
    }

    func testFuzzRandomInputNeverCrashesAndRoundTrips() {
        var rng = SplitMix64(seed: 0x150_4E)
        var parsed = 0
        for _ in 0..<2_000 { check(randomInput(&rng), counts: &parsed) }
        XCTAssertGreaterThan(parsed, 0, "expected some random inputs to parse, so the round trip is exercised")
    }

    func testFuzzMutatedEnvelopeNeverCrashesAndRoundTrips() {
        var rng = SplitMix64(seed: 0xE1_0BE)
        let base = Array(envelope.utf8)
        var parsed = 0
        for _ in 0..<2_000 { check(mutate(base, &rng), counts: &parsed) }
        XCTAssertGreaterThan(parsed, 50, "expected many mutated envelopes to stay valid, so the round trip is exercised")
    }
}
