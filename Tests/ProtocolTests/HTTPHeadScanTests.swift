import XCTest
@testable import Protocol

/// The byte walks on the connect path (a head's lines, a header's token list, one query
/// parameter) against the plain definitions they replace, on generated input.
final class HTTPHeadScanTests: XCTestCase {

    /// A head split at LF with empty pieces kept, each without one trailing CR, the empty ones
    /// at the end dropped: the definition `HeadLines` walks in place.
    private func referenceLines(_ head: [UInt8]) -> [[UInt8]] {
        var lines = head.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { $0.last == UInt8(ascii: "\r") ? Array($0.dropLast()) : Array($0) }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        return lines
    }

    func testHeadLinesMatchTheSplitDefinitionOnGeneratedHeads() {
        var rng = SplitMix64(seed: 24_1)
        let alphabet: [UInt8] = Array("\r\n\r\na: ".utf8)
        for round in 0..<5_000 {
            let head = (0..<Int.random(in: 0...24, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            // Also as a slice that does not start at 0, as the parser's buffer hands it over.
            let padded = [UInt8](repeating: 0x41, count: 3) + head
            var walk = HTTPRequestParser.HeadLines(padded[3...])
            var got: [[UInt8]] = []
            while let line = walk.next() { got.append(Array(line)) }
            XCTAssertEqual(got, referenceLines(head), "round \(round): \(head)")
        }
    }

    func testHeaderTokenListIsCaseInsensitiveTrimmedAndWholeElementsOnly() {
        let r = HTTPRequest(method: "GET", target: "/", headers: [
            ("connection", "keep-alive ,\tUpGrade "), ("upgrade", "h2c"), ("upgrade", "WebSocket"),
        ])
        XCTAssertTrue(r.headerHasToken("Connection", "upgrade"))
        XCTAssertTrue(r.headerHasToken("connection", "KEEP-ALIVE"))
        XCTAssertTrue(r.headerHasToken("upgrade", "websocket"), "the second of two fields")
        XCTAssertFalse(r.headerHasToken("connection", "grade"), "not a substring")
        XCTAssertFalse(r.headerHasToken("connection", "keep"), "not a prefix")
        XCTAssertFalse(r.headerHasToken("host", "upgrade"), "absent header")
        XCTAssertTrue(HTTPRequest.listHasToken(",,close,", "close"), "empty elements are skipped")
        XCTAssertFalse(HTTPRequest.listHasToken("", "close"))
    }

    func testHeaderTokenListMatchesTheSplitDefinitionOnGeneratedLists() {
        var rng = SplitMix64(seed: 24_2)
        let alphabet: [Character] = [",", " ", "\t", "a", "A", "b"]
        for _ in 0..<5_000 {
            let list = String((0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
            let token = ["a", "ab", "AB", "b", "aa"].randomElement(using: &rng)!
            let expected = list.split(separator: ",").contains { $0.trimmingSpaces.lowercased() == token.lowercased() }
            XCTAssertEqual(HTTPRequest.listHasToken(list, token), expected, "\(list.debugDescription) has \(token)")
        }
    }

    /// The query split at `&` into non-empty pairs, each at its first `=`; pairs whose key
    /// does not decode or is empty are skipped; a value that does not decode is empty; the
    /// first value of a name wins.
    private func referenceQuery(_ target: String) -> [String: String] {
        guard let q = target.firstIndex(of: "?") else { return [:] }
        var out: [String: String] = [:]
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let eq = pair.firstIndex(of: "=")
            guard let key = HTTPRequest.percentDecode(eq.map { pair[..<$0] } ?? pair), !key.isEmpty else { continue }
            if out[key] == nil { out[key] = eq.map { HTTPRequest.percentDecode(pair[pair.index(after: $0)...]) ?? "" } ?? "" }
        }
        return out
    }

    func testQueryWalkGivesWhatTheSplitDefinitionGives() {
        var rng = SplitMix64(seed: 24_3)
        let pieces = ["token", "t", "%74oken", "=", "&", "a", "+", "%2E", "%zz", "%e2%82%ac", "x"]
        for _ in 0..<5_000 {
            let target = "/ws?" + (0..<Int.random(in: 0...8, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let r = HTTPRequest(method: "GET", target: target)
            let expected = referenceQuery(target)
            XCTAssertEqual(r.query, expected, target)
            for name in ["token", "t", "a", "x", "."] {
                XCTAssertEqual(r.queryValue(name), expected[name], "\(target) \(name)")
            }
        }
        XCTAssertNil(HTTPRequest(method: "GET", target: "/ws").queryValue("token"))
    }
}
