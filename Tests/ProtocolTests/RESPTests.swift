import XCTest
@testable import Protocol

// The RESP parser fed whole, byte by byte and in random splits: every RESP2 and RESP3 type,
// nesting, pipelined replies in order, and each limit and rule broken as its own error,
// raised before anything is allocated for a declared length.
final class RESPTests: XCTestCase {
    /// Feeds `stream` cut as `feeding` says and collects every value (rethrowing the first error).
    private func parseAll(_ stream: [UInt8], _ feeding: Feeding, limits: RESPLimits = RESPLimits()) throws -> [RESPValue] {
        var parser = RESPParser(limits: limits)
        var out: [RESPValue] = []
        for r in feeding.ranges(count: stream.count) {
            parser.feed(Array(stream[r]))
            while let v = try parser.next() { out.append(v) }
        }
        XCTAssertEqual(parser.bufferedBytes, 0, "expected nothing left over (\(feeding))")
        return out
    }

    private let everyType: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR unknown command 'FOO'\r\n", .error("ERR unknown command 'FOO'")),
        (":1000\r\n", .integer(1000)),
        (":-42\r\n", .integer(-42)),
        ("$5\r\nhello\r\n", .bulkString(Array("hello".utf8))),
        ("$0\r\n\r\n", .bulkString([])),
        ("$6\r\na\r\nb\r\n\r\n", .bulkString(Array("a\r\nb\r\n".utf8))),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("*0\r\n", .array([])),
        ("*3\r\n:1\r\n$3\r\nfoo\r\n+bar\r\n", .array([.integer(1), .bulkString(Array("foo".utf8)), .simpleString("bar")])),
        ("*2\r\n*1\r\n:1\r\n*2\r\n$-1\r\n*0\r\n", .array([.array([.integer(1)]), .array([.null, .array([])])])),
        ("_\r\n", .null),
        (",3.25\r\n", .double(3.25)),
        (",-inf\r\n", .double(-.infinity)),
        ("#t\r\n", .boolean(true)),
        ("#f\r\n", .boolean(false)),
        ("(3492890328409238509324850943850943825024385\r\n", .bigNumber("3492890328409238509324850943850943825024385")),
        ("!21\r\nSYNTAX invalid syntax\r\n", .error("SYNTAX invalid syntax")),
        ("=15\r\ntxt:Some string\r\n", .bulkString(Array("Some string".utf8))),
        ("%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", .map([.simpleString("first"), .integer(1), .simpleString("second"), .integer(2)])),
        ("~2\r\n+a\r\n+b\r\n", .set([.simpleString("a"), .simpleString("b")])),
        (">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", .push([.bulkString(Array("message".utf8)), .bulkString(Array("ch".utf8)), .bulkString(Array("hi".utf8))])),
        ("|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:7\r\n", .integer(7)),
    ]

    func testEveryTypeParsesWhateverTheSplits() throws {
        let stream = Array(everyType.map(\.0).joined().utf8)
        let expected = everyType.map(\.1)
        for feeding in Feeding.all(randomCount: 50) {
            XCTAssertEqual(try parseAll(stream, feeding), expected, "\(feeding)")
        }
    }

    func testAnEmptyAttributeIsSkippedNotAReply() throws {
        let stream = Array("|0\r\n:7\r\n*2\r\n|0\r\n:1\r\n:2\r\n".utf8)
        for feeding in Feeding.all(randomCount: 10) {
            XCTAssertEqual(try parseAll(stream, feeding), [.integer(7), .array([.integer(1), .integer(2)])], "\(feeding)")
        }
    }

    func testPipelinedRepliesComeOutInOrder() throws {
        var stream: [UInt8] = []
        for i in 1...2_000 { stream += Array(":\(i)\r\n".utf8) }
        stream += Array("*3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n".utf8)
        for feeding in Feeding.all(randomCount: 5) {
            let values = try parseAll(stream, feeding)
            XCTAssertEqual(values.count, 2_001, "\(feeding)")
            XCTAssertEqual(values.prefix(2_000).compactMap(\.integer), (1...2_000).map(Int64.init), "\(feeding)")
        }
    }

    func testALargeArrayFedInSmallPiecesIsWhole() throws {
        var stream = Array("*5000\r\n".utf8)
        for i in 0..<5_000 { stream += Array("$\(String(i).count)\r\n\(i)\r\n".utf8) }
        for feeding in [Feeding.byteByByte, .random(seed: 7)] {
            let values = try parseAll(stream, feeding)
            XCTAssertEqual(values.count, 1)
            XCTAssertEqual(values.first?.elements?.count, 5_000, "\(feeding)")
            XCTAssertEqual(values.first?.elements?.last?.string, "4999")
        }
    }

    private func expectError(_ text: String, _ expected: RESPError, limits: RESPLimits = RESPLimits(),
                             file: StaticString = #filePath, line: UInt = #line) {
        for feeding in Feeding.all(randomCount: 3) {
            XCTAssertThrowsError(try parseAll(Array(text.utf8), feeding, limits: limits), "\(feeding)", file: file, line: line) { e in
                XCTAssertEqual(e as? RESPError, expected, "\(feeding)", file: file, line: line)
            }
        }
    }

    func testDeclaredLengthsOverTheLimitsAreErrorsBeforeAnyPayload() {
        var limits = RESPLimits()
        limits.maxBulkLength = 100
        limits.maxAggregateLength = 10
        expectError("$101\r\n", .bulkTooLong(101), limits: limits)
        expectError("$9223372036854775807\r\n", .bulkTooLong(Int.max), limits: limits)
        expectError("*11\r\n", .aggregateTooLong(11), limits: limits)
        expectError("%6\r\n", .aggregateTooLong(6), limits: limits)
        expectError("*99999999999999999999\r\n", .invalidLength, limits: limits)
        limits.maxDepth = 3
        expectError("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", .nestedTooDeep, limits: limits)
        limits.maxLineLength = 16
        expectError("+" + String(repeating: "a", count: 40), .lineTooLong, limits: limits)
    }

    func testBrokenRulesAreTypedErrors() {
        expectError("?what\r\n", .unknownType(UInt8(ascii: "?")))
        expectError(":12a\r\n", .invalidInteger)
        expectError(":\r\n", .invalidInteger)
        expectError("$-2\r\n", .invalidLength)
        expectError("$3\r\nabcd\r\n", .missingCRLF)
        expectError("+OK\rX", .missingCRLF)
        expectError(",pi\r\n", .invalidDouble)
        expectError("#x\r\n", .invalidBoolean)
        expectError("_x\r\n", .invalidLength)
    }

    func testCommandsEncodeAsArraysOfBulkStrings() throws {
        XCTAssertEqual(String(decoding: RESPCommand.encode(["SET", "k", "välue"]), as: UTF8.self),
                       "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nvälue\r\n")
        var out: [UInt8] = []
        RESPCommand.encode([Array("PUBLISH".utf8), Array("c".utf8), [0, 13, 10, 255]], into: &out)
        // A server reads a command the way this parser reads an array of bulk strings.
        var parser = RESPParser()
        parser.feed(out)
        XCTAssertEqual(try parser.next(), .array([.bulkString(Array("PUBLISH".utf8)), .bulkString(Array("c".utf8)), .bulkString([0, 13, 10, 255])]))
    }
}
