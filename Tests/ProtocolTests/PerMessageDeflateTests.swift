import XCTest
@testable import Protocol

final class PerMessageDeflateTests: XCTestCase {

    private func negotiate(_ offers: [String], policy: DeflatePolicy = DeflatePolicy())
        -> (parameters: DeflateParameters, response: String)? {
        PerMessageDeflate.negotiate(offers: offers, policy: policy)
    }

    private func negotiate(_ offer: String, policy: DeflatePolicy = DeflatePolicy())
        -> (parameters: DeflateParameters, response: String)? {
        negotiate([offer], policy: policy)
    }

    private func params(_ configure: (inout DeflateParameters) -> Void) -> DeflateParameters {
        var p = DeflateParameters()
        configure(&p)
        return p
    }

    // MARK: negotiation

    func testPlainOfferIsAcceptedWithDefaults() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate"), "expected a plain offer to be accepted")
        XCTAssertEqual(agreed.parameters, DeflateParameters(), "expected default parameters for a plain offer")
        XCTAssertEqual(agreed.response, "permessage-deflate", "expected a bare extension token in the response")
    }

    func testExtensionNameIsCaseInsensitiveAndOtherExtensionsAreSkipped() throws {
        let agreed = try XCTUnwrap(negotiate("x-webkit-deflate-frame, Permessage-Deflate"),
                                   "expected permessage-deflate to be found after an unknown extension")
        XCTAssertEqual(agreed.response, "permessage-deflate", "expected the canonical token in the response")
    }

    func testNoOfferGivesNil() {
        XCTAssertNil(negotiate([]), "expected nil without an extensions header")
        XCTAssertNil(negotiate("x-other-extension"), "expected nil when permessage-deflate is not offered")
    }

    func testServerNoContextTakeoverIsReflected() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate; server_no_context_takeover"),
                                   "expected server_no_context_takeover to be accepted")
        XCTAssertEqual(agreed.parameters, params { $0.serverNoContextTakeover = true },
                       "expected serverNoContextTakeover set")
        XCTAssertEqual(agreed.response, "permessage-deflate; server_no_context_takeover",
                       "expected server_no_context_takeover in the response")
    }

    func testClientNoContextTakeoverIsReflected() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate; client_no_context_takeover"),
                                   "expected client_no_context_takeover to be accepted")
        XCTAssertEqual(agreed.parameters, params { $0.clientNoContextTakeover = true },
                       "expected clientNoContextTakeover set")
        XCTAssertEqual(agreed.response, "permessage-deflate; client_no_context_takeover",
                       "expected client_no_context_takeover in the response")
    }

    func testServerMaxWindowBitsIsReflected() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate; server_max_window_bits=10"),
                                   "expected server_max_window_bits=10 to be accepted")
        XCTAssertEqual(agreed.parameters.serverMaxWindowBits, 10, "expected the server window of 10 bits")
        XCTAssertEqual(agreed.response, "permessage-deflate; server_max_window_bits=10",
                       "expected server_max_window_bits=10 in the response")
    }

    func testClientMaxWindowBitsWithValueIsReflected() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate; client_max_window_bits=9"),
                                   "expected client_max_window_bits=9 to be accepted")
        XCTAssertEqual(agreed.parameters.clientMaxWindowBits, 9, "expected the client window of 9 bits")
        XCTAssertEqual(agreed.response, "permessage-deflate; client_max_window_bits=9",
                       "expected client_max_window_bits=9 in the response")
    }

    func testClientMaxWindowBitsWithoutValueMeans15AndIsNotEchoed() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate; client_max_window_bits"),
                                   "expected client_max_window_bits without a value to be accepted")
        XCTAssertEqual(agreed.parameters.clientMaxWindowBits, 15, "expected a valueless client_max_window_bits to mean 15")
        XCTAssertEqual(agreed.response, "permessage-deflate", "expected no client_max_window_bits in the response for 15")
    }

    func testAllParametersTogetherAreReflectedInOrder() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate;client_max_window_bits=12 ; server_max_window_bits=11;"
                                             + " client_no_context_takeover; server_no_context_takeover"),
                                   "expected an offer with every parameter to be accepted")
        XCTAssertEqual(agreed.parameters, params {
            $0.serverNoContextTakeover = true
            $0.clientNoContextTakeover = true
            $0.serverMaxWindowBits = 11
            $0.clientMaxWindowBits = 12
        }, "expected every offered parameter to be recorded")
        XCTAssertEqual(agreed.response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                       + " server_max_window_bits=11; client_max_window_bits=12",
                       "expected every parameter in the response")
    }

    func testQuotedValueIsAccepted() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate; server_max_window_bits=\"10\""),
                                   "expected a quoted-string window size to be accepted")
        XCTAssertEqual(agreed.parameters.serverMaxWindowBits, 10, "expected the quoted value to be unquoted")
        XCTAssertEqual(agreed.response, "permessage-deflate; server_max_window_bits=10",
                       "expected the value unquoted in the response")
    }

    func testInvalidParametersDeclineTheOfferAndTheNextOfferIsPicked() {
        let bad = [
            "unknown_param",
            "unknown_param=1",
            "server_no_context_takeover; server_no_context_takeover",
            "client_max_window_bits=10; client_max_window_bits=11",
            "server_max_window_bits=7",
            "server_max_window_bits=16",
            "server_max_window_bits=08",
            "client_max_window_bits=7",
            "client_max_window_bits=16",
            "client_max_window_bits=08",
            "server_max_window_bits",
            "server_max_window_bits=ten",
            "server_no_context_takeover=1",
            "client_no_context_takeover=true",
        ]
        for param in bad {
            XCTAssertNil(negotiate("permessage-deflate; \(param)"),
                         "expected the offer with '\(param)' to be declined")
            let agreed = negotiate("permessage-deflate; \(param), permessage-deflate; client_no_context_takeover")
            XCTAssertEqual(agreed?.parameters, params { $0.clientNoContextTakeover = true },
                           "expected the second offer to be picked after declining '\(param)'")
            XCTAssertEqual(agreed?.response, "permessage-deflate; client_no_context_takeover",
                           "expected the second offer's response after declining '\(param)'")
            let acrossHeaders = negotiate(["permessage-deflate; \(param)", "permessage-deflate"])
            XCTAssertEqual(acrossHeaders?.parameters, DeflateParameters(),
                           "expected an offer in a later header value to be picked after declining '\(param)'")
        }
    }

    /// RFC 7692 §7.1 / RFC 6455 §9.1: a parameter with "=" must have a token or quoted-string
    /// value; an empty value is invalid and declines the offer.
    func testParameterWithEmptyValueDeclinesTheOffer() {
        XCTAssertNil(negotiate("permessage-deflate; client_max_window_bits="),
                     "expected 'client_max_window_bits=' (empty value) to decline the offer")
        XCTAssertNil(negotiate("permessage-deflate; server_no_context_takeover="),
                     "expected 'server_no_context_takeover=' (empty value) to decline the offer")
    }

    func testPolicyDisabledGivesNil() {
        XCTAssertNil(negotiate("permessage-deflate", policy: DeflatePolicy(enabled: false)),
                     "expected nil when the policy disables deflate")
    }

    func testForceServerNoContextTakeoverAddsIt() throws {
        let agreed = try XCTUnwrap(negotiate("permessage-deflate; client_max_window_bits",
                                             policy: DeflatePolicy(forceServerNoContextTakeover: true)),
                                   "expected the offer to be accepted")
        XCTAssertTrue(agreed.parameters.serverNoContextTakeover, "expected the policy to force server_no_context_takeover")
        XCTAssertEqual(agreed.response, "permessage-deflate; server_no_context_takeover",
                       "expected the forced server_no_context_takeover in the response")
    }

    // MARK: codec round trips

    private static let sizes = [0, 1, 100, 100_000]

    private func messages() -> [[UInt8]] {
        Self.sizes.enumerated().map { sampleText(byteCount: $0.element, seed: UInt64($0.offset) + 77) }
    }

    private func roundTrip(_ p: DeflateParameters, inflaterResets: Bool, rounds: Int = 2,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let deflater = try XCTUnwrap(Deflater(parameters: p), "expected a deflater for \(p)", file: file, line: line)
        let inflater = try XCTUnwrap(Inflater(noContextTakeover: inflaterResets), "expected an inflater", file: file, line: line)
        for round in 0..<rounds {
            for message in messages() {
                let compressed = deflater.deflate(message)
                XCTAssertFalse(compressed.isEmpty, "expected at least one byte of compressed output", file: file, line: line)
                XCTAssertFalse(compressed.suffix(4) == [0, 0, 0xFF, 0xFF],
                               "expected the 00 00 FF FF tail to be removed", file: file, line: line)
                let restored = try inflater.inflate(compressed, limit: 1 << 20)
                XCTAssertEqual(restored, message,
                               "expected a \(message.count)-byte message to round trip (round \(round), \(p))",
                               file: file, line: line)
            }
        }
    }

    func testRoundTripWithContextTakeoverAcrossSeveralMessages() throws {
        try roundTrip(DeflateParameters(), inflaterResets: false, rounds: 3)
    }

    func testRoundTripWithNoContextTakeover() throws {
        var p = DeflateParameters()
        p.serverNoContextTakeover = true
        try roundTrip(p, inflaterResets: true, rounds: 3)
    }

    func testRoundTripWithServerWindowOf10Bits() throws {
        var p = DeflateParameters()
        p.serverMaxWindowBits = 10
        try roundTrip(p, inflaterResets: false)
    }

    func testRoundTripWithServerWindowOf8BitsUsesHuffmanOnly() throws {
        var p = DeflateParameters()
        p.serverMaxWindowBits = 8
        try roundTrip(p, inflaterResets: false)
        try roundTrip(p, inflaterResets: true, rounds: 1)

        // Huffman-only coding has no back-references: 10 000 identical bytes cost at least
        // one bit each, where LZ77 would need a handful of bytes.
        let deflater = try XCTUnwrap(Deflater(parameters: p), "expected a deflater for 8 bits")
        let compressed = deflater.deflate([UInt8](repeating: UInt8(ascii: "a"), count: 10_000))
        XCTAssertGreaterThanOrEqual(compressed.count, 10_000 / 8,
                                    "expected Huffman-only output (no back-references) for a window of 8 bits")
        let inflater = try XCTUnwrap(Inflater(noContextTakeover: false), "expected an inflater")
        XCTAssertEqual(try inflater.inflate(compressed, limit: 1 << 20), [UInt8](repeating: UInt8(ascii: "a"), count: 10_000),
                       "expected the Huffman-only output to inflate back")
    }

    func testContextTakeoverMakesARepeatedMessageSmaller() throws {
        let deflater = try XCTUnwrap(Deflater(parameters: DeflateParameters()), "expected a deflater")
        let message = sampleText(byteCount: 300, seed: 9)
        let first = deflater.deflate(message)
        let second = deflater.deflate(message)
        XCTAssertLessThan(second.count, first.count / 2,
                          "expected the second copy to reference the first through the shared window")
        let inflater = try XCTUnwrap(Inflater(noContextTakeover: false), "expected an inflater")
        XCTAssertEqual(try inflater.inflate(first, limit: 1 << 20), message, "expected the first message back")
        XCTAssertEqual(try inflater.inflate(second, limit: 1 << 20), message, "expected the second message back from the window")
    }

    func testNoContextTakeoverMessagesInflateIndependently() throws {
        var p = DeflateParameters()
        p.serverNoContextTakeover = true
        let deflater = try XCTUnwrap(Deflater(parameters: p), "expected a deflater")
        let message = sampleText(byteCount: 300, seed: 10)
        let first = deflater.deflate(message)
        let second = deflater.deflate(message)
        XCTAssertEqual(first, second, "expected identical output for identical messages when the compressor resets")
        let fresh = try XCTUnwrap(Inflater(noContextTakeover: true), "expected an inflater")
        XCTAssertEqual(try fresh.inflate(second, limit: 1 << 20), message,
                       "expected a message to inflate without the previous message's window")
    }

    func testEmptyMessageDeflatesToInflatableBytes() throws {
        let deflater = try XCTUnwrap(Deflater(parameters: DeflateParameters()), "expected a deflater")
        let inflater = try XCTUnwrap(Inflater(noContextTakeover: false), "expected an inflater")
        for i in 0..<3 {
            let compressed = deflater.deflate([UInt8]())
            XCTAssertEqual(try inflater.inflate(compressed, limit: 10), [], "expected empty message \(i) to inflate to nothing")
        }
        // The single 0x00 byte of RFC 7692 §7.2.3.6.
        XCTAssertEqual(try inflater.inflate([0x00], limit: 10), [], "expected [0x00] to inflate to an empty message")
    }

    func testInflaterRefusesOutputPastTheLimit() throws {
        let deflater = try XCTUnwrap(Deflater(parameters: DeflateParameters()), "expected a deflater")
        let compressed = deflater.deflate([UInt8](repeating: 0, count: 100_000))
        let inflater = try XCTUnwrap(Inflater(noContextTakeover: true), "expected an inflater")
        XCTAssertThrowsError(try inflater.inflate(compressed, limit: 99_999), "expected output past the limit to throw") { error in
            XCTAssertEqual(error as? WebSocketError, .messageTooBig(limit: 99_999), "expected messageTooBig, got \(error)")
        }
        let again = try XCTUnwrap(Inflater(noContextTakeover: true), "expected an inflater")
        XCTAssertEqual(try again.inflate(compressed, limit: 100_000).count, 100_000,
                       "expected output exactly at the limit to be allowed")
    }

    func testInflaterRejectsCorruptData() throws {
        let inflater = try XCTUnwrap(Inflater(noContextTakeover: false), "expected an inflater")
        XCTAssertThrowsError(try inflater.inflate([0xFF, 0xFF, 0xFF, 0xFF], limit: 1 << 20),
                             "expected a corrupt stream to throw") { error in
            XCTAssertEqual((error as? WebSocketError)?.closeCode.rawValue, 1007, "expected 1007 for corrupt data, got \(error)")
        }
    }
}
