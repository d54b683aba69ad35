import XCTest
@testable import Protocol

// The request envelope: every refusal's exact code and message, which id it answers, and which
// refusal wins when a request breaks several rules.
final class OpDecoderTests: XCTestCase {
    private let limit = 64 * 1024

    private func decode(_ text: String, opcode: Opcode = .text, limit: Int? = nil,
                        authenticated: Bool = true) -> Result<OpRequest, OpRefusal> {
        OpDecoder.decode(opcode: opcode, payload: Array(text.utf8), maxEnvelopeBytes: limit ?? self.limit,
                         authenticated: authenticated)
    }

    private func refusal(_ text: String, opcode: Opcode = .text, limit: Int? = nil, authenticated: Bool = true,
                         file: StaticString = #filePath, line: UInt = #line) -> OpRefusal? {
        switch decode(text, opcode: opcode, limit: limit, authenticated: authenticated) {
        case .success(let r):
            XCTFail("expected a refusal, got op \(r.op.rawValue)", file: file, line: line)
            return nil
        case .failure(let f): return f
        }
    }

    func testAWellFormedRequestKeepsItsIdOpAndParams() throws {
        let r = try decode(#"{"id":7,"op":"send","channel":"conv:website:u1","text":"hi"}"#).get()
        XCTAssertEqual(r.id, 7)
        XCTAssertEqual(r.op, .send)
        XCTAssertEqual(r.params["text"]?.stringValue, "hi")
        XCTAssertEqual(r.params["channel"]?.stringValue, "conv:website:u1")
    }

    func testEveryOpNameDecodesToItsOp() throws {
        for op in Op.allCases {
            XCTAssertEqual(try decode(#"{"id":1,"op":"\#(op.rawValue)"}"#).get().op, op)
        }
    }

    func testABinaryFrameIsRefusedWithTheScannedId() {
        XCTAssertEqual(refusal(#"{"id":3,"op":"ping"}"#, opcode: .binary),
                       OpRefusal(id: 3, code: .badRequest, message: "ops are JSON text frames"))
        XCTAssertEqual(refusal("\u{1}\u{2}", opcode: .binary),
                       OpRefusal(id: nil, code: .badRequest, message: "ops are JSON text frames"))
    }

    func testARequestOverTheSizeIsRefusedWithTheScannedId() {
        let big = #"{"id":4,"op":"send","text":""# + String(repeating: "a", count: 100) + #""}"#
        XCTAssertEqual(refusal(big, limit: 64),
                       OpRefusal(id: 4, code: .tooLarge, message: "request over 64 bytes"))
        XCTAssertNotNil(try? decode(big, limit: big.utf8.count).get(), "exactly at the limit is accepted")
    }

    func testInvalidJSONIsRefusedWithTheParsersMessage() {
        XCTAssertEqual(refusal(#"{"id":5,"op":"ping""#),
                       OpRefusal(id: 5, code: .badRequest, message: "invalid JSON: unexpected end of JSON"))
        XCTAssertEqual(refusal(#"{"id":6,"op":"ping",}"#),
                       OpRefusal(id: 6, code: .badRequest, message: "invalid JSON: unexpected character at byte 20"))
        XCTAssertEqual(refusal(#"{"id":1,"id":2}"#),
                       OpRefusal(id: 1, code: .badRequest, message: "invalid JSON: duplicate key \"id\""), "the scan answers the first id")
        XCTAssertEqual(refusal(#"{"id":8}x"#),
                       OpRefusal(id: 8, code: .badRequest, message: "invalid JSON: data after the JSON value at byte 8"))
    }

    func testNestingPastSixteenIsInvalidJSON() {
        let deep = #"{"id":9,"op":"ping","x":"# + String(repeating: "[", count: 16) + String(repeating: "]", count: 16) + "}"
        XCTAssertEqual(refusal(deep), OpRefusal(id: 9, code: .badRequest, message: "invalid JSON: JSON nested deeper than 16"))
        let fits = #"{"id":9,"op":"ping","x":"# + String(repeating: "[", count: 15) + String(repeating: "]", count: 15) + "}"
        XCTAssertNotNil(try? decode(fits).get())
    }

    func testARequestIsAnObject() {
        for text in ["[1]", "1", #""id""#, "null"] {
            XCTAssertEqual(refusal(text), OpRefusal(id: nil, code: .badRequest, message: "a request is a JSON object"), text)
        }
    }

    func testTheIdIsAnIntegerWrittenAsOne() {
        for text in [#"{"op":"ping"}"#, #"{"id":"1","op":"ping"}"#, #"{"id":1.0,"op":"ping"}"#, #"{"id":1.5,"op":"ping"}"#,
                     #"{"id":null,"op":"ping"}"#] {
            XCTAssertEqual(refusal(text), OpRefusal(id: nil, code: .badRequest, message: "id must be an integer"), text)
        }
        XCTAssertEqual(try decode(#"{"id":-2,"op":"ping"}"#).get().id, -2)
    }

    func testTheOpIsAString() {
        for text in [#"{"id":2}"#, #"{"id":2,"op":1}"#, #"{"id":2,"op":null}"#] {
            XCTAssertEqual(refusal(text), OpRefusal(id: 2, code: .badRequest, message: "op must be a string"), text)
        }
    }

    func testAuthAndPingNeedNoAuthentication() throws {
        XCTAssertEqual(try decode(#"{"id":1,"op":"auth","token":"t"}"#, authenticated: false).get().op, .auth)
        XCTAssertEqual(try decode(#"{"id":1,"op":"ping"}"#, authenticated: false).get().op, .ping)
    }

    func testEveryOtherOpNeedsAuthenticationAndIsTimedAsItself() {
        for op in Op.allCases where op != .auth && op != .ping {
            XCTAssertEqual(refusal(#"{"id":3,"op":"\#(op.rawValue)"}"#, authenticated: false),
                           OpRefusal(id: 3, code: .unauthorized, message: "authenticate first with the auth op", op: op))
        }
    }

    func testAnUnknownOpIsQuotedUpToFortyCharacters() {
        XCTAssertEqual(refusal(#"{"id":4,"op":"Send"}"#),
                       OpRefusal(id: 4, code: .badRequest, message: #"unknown op "Send""#))
        let long = String(repeating: "x", count: 39) + "é\"tail"
        XCTAssertEqual(refusal(#"{"id":4,"op":"\#(long.replacingOccurrences(of: "\"", with: "\\\""))"}"#),
                       OpRefusal(id: 4, code: .badRequest, message: "unknown op \"" + String(repeating: "x", count: 39) + "é\""))
        XCTAssertEqual(refusal(#"{"id":4,"op":"a\"b"}"#),
                       OpRefusal(id: 4, code: .badRequest, message: #"unknown op "a\"b""#))
    }

    // The order of precedence, one rule broken further along each time.

    func testNotTextWinsOverSize() {
        let big = #"{"id":1,"op":"ping","pad":""# + String(repeating: "a", count: 100) + #""}"#
        XCTAssertEqual(refusal(big, opcode: .binary, limit: 16)?.message, "ops are JSON text frames")
    }

    func testSizeWinsOverInvalidJSON() {
        XCTAssertEqual(refusal(#"{"id":1,"op":"ping","#, limit: 8)?.code.rawValue, "too_large")
    }

    func testInvalidJSONWinsOverTheEnvelopeRules() {
        XCTAssertEqual(refusal("[1,]")?.message, "invalid JSON: unexpected character at byte 3")
    }

    func testNotAnObjectWinsOverEverythingAfter() {
        XCTAssertEqual(refusal("[]", authenticated: false)?.message, "a request is a JSON object")
    }

    func testTheIdWinsOverTheOp() {
        XCTAssertEqual(refusal(#"{"id":"x","op":7}"#, authenticated: false)?.message, "id must be an integer")
    }

    func testTheOpTypeWinsOverAuthentication() {
        XCTAssertEqual(refusal(#"{"id":1,"op":7}"#, authenticated: false)?.message, "op must be a string")
    }

    func testAuthenticationWinsOverAnUnknownOp() {
        XCTAssertEqual(refusal(#"{"id":1,"op":"nope"}"#, authenticated: false),
                       OpRefusal(id: 1, code: .unauthorized, message: "authenticate first with the auth op", op: nil))
        XCTAssertEqual(refusal(#"{"id":1,"op":"nope"}"#, authenticated: true)?.message, #"unknown op "nope""#)
    }
}
