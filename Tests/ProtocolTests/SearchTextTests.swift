import XCTest
@testable import Protocol

// The words of search and the snippet (docs/protocol.md "Search"): pure, no store, no socket.
final class SearchTextTests: XCTestCase {
    func testWordsAreRunsOfLettersAndDigitsLowercased() {
        XCTAssertEqual(SearchText.terms("Hello, WORLD! Order #A-1234 (twice: hello)"), ["hello", "world", "order", "a", "1234", "twice"])
        XCTAssertEqual(SearchText.terms("e-mail: ann@example.com"), ["e", "mail", "ann", "example", "com"])
        XCTAssertEqual(SearchText.terms("  \n\t...!!"), [], "no letter, no word")
    }

    func testDiacriticsAndCaseFoldInAnyLatinGreekOrCyrillicText() {
        XCTAssertEqual(SearchText.terms("Crème BRÛLÉE à Zürich"), ["creme", "brulee", "a", "zurich"])
        XCTAssertEqual(SearchText.terms("ΚΑΛΗΜΈΡΑ Οδός"), ["καλημερα", "οδοσ"], "Greek: accents gone, final sigma as σ")
        XCTAssertEqual(SearchText.terms("Привет, Ёлка и ЙОД"), ["привет", "елка", "и", "иод"])
        XCTAssertEqual(SearchText.terms("e\u{301}cole"), ["ecole"], "a decomposed accent goes too")
    }

    func testEachIdeographIsAWordAndOtherScriptsKeepTheirRuns() {
        XCTAssertEqual(SearchText.terms("東京タワーへ行く"), ["東", "京", "タワーへ", "行", "く"])
        XCTAssertEqual(SearchText.terms("안녕하세요 세계"), ["안녕하세요", "세계"])
        XCTAssertEqual(SearchText.terms("مرحبا بالعالم"), ["مرحبا", "بالعالم"])
    }

    /// The byte walk for ASCII texts and the scalar walk give the same terms, in the same
    /// order: checked on 5,000 generated texts of letters, digits, punctuation, controls and
    /// long runs (some repeating words past the point where the walk switches to a set).
    func testTheASCIIWalkAgreesWithTheScalarWalk() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("abcXYZ019 .,;!?-_'\"\t\n\u{0}\u{7f}@#".unicodeScalars)
        let words = ["Hello", "hello", "HELLO", "a", "Z9", String(repeating: "Long", count: 12), "x1y2"]
        for _ in 0..<5_000 {
            var text = ""
            for _ in 0..<Int.random(in: 0...80, using: &rng) {
                if Bool.random(using: &rng) {
                    text += words.randomElement(using: &rng)! + " "
                } else {
                    text.unicodeScalars.append(alphabet.randomElement(using: &rng)!)
                }
            }
            XCTAssertEqual(SearchText.asciiTerms(text), SearchText.termsOfWords(text), text.debugDescription)
        }
        XCTAssertNil(SearchText.asciiTerms("café au lait"), "a byte outside ASCII takes the scalar walk")
        XCTAssertEqual(SearchText.terms("café au lait"), ["cafe", "au", "lait"])
        XCTAssertEqual(SearchText.terms((1...40).map { "w\($0) w\($0)" }.joined(separator: " ")), (1...40).map { "w\($0)" })
    }

    func testLongWordsAreCutToTheTermLength() {
        let long = String(repeating: "x", count: 100)
        XCTAssertEqual(SearchText.terms(long), [String(repeating: "x", count: SearchText.maxTermLength)])
        XCTAssertTrue(SearchText.matches(text: long, query: SearchText.terms(long + "yz")), "the query is cut the same way")
    }

    func testAQueryMatchesWordsAndTheirBeginningsAllTermsRequired() {
        let text = "Your invoice for March is attached"
        XCTAssertTrue(SearchText.matches(text: text, query: ["invoice"]))
        XCTAssertTrue(SearchText.matches(text: text, query: ["inv"]), "a prefix")
        XCTAssertTrue(SearchText.matches(text: text, query: ["inv", "march"]), "every term, in any order")
        XCTAssertFalse(SearchText.matches(text: text, query: ["invoice", "april"]), "every term must match")
        XCTAssertFalse(SearchText.matches(text: text, query: ["voice"]), "only beginnings of words")
        XCTAssertFalse(SearchText.matches(text: text, query: []), "no term matches nothing")
    }

    func testQueryTermsAreDistinctAndAtMostEight() {
        XCTAssertEqual(SearchText.queryTerms("Refund refund REFUND"), ["refund"])
        XCTAssertEqual(SearchText.queryTerms("!!! ???"), [])
        XCTAssertEqual(SearchText.queryTerms("a b c d e f g h")?.count, 8)
        XCTAssertNil(SearchText.queryTerms("a b c d e f g h i"), "nine words are too many")
    }

    func testASnippetMarksMatchesAndEscapesHTML() {
        XCTAssertEqual(SearchText.snippet("Is <b>the</b> \"refund\" & Refunds done?", query: ["refund"]),
                       "Is &lt;b&gt;the&lt;/b&gt; &quot;<mark>refund</mark>&quot; &amp; <mark>Refunds</mark> done?")
        XCTAssertEqual(SearchText.snippet("line one\nline two", query: ["two"]), "line one line <mark>two</mark>")
        XCTAssertEqual(SearchText.snippet("Ελληνικά: ΟΔΌΣ", query: SearchText.terms("οδος")), "Ελληνικά: <mark>ΟΔΌΣ</mark>",
                       "the text as written, marked where its term matched")
    }

    func testALongTextIsCutAroundTheFirstMatchWithEllipses() {
        let before = (1...40).map { "word\($0)" }.joined(separator: " ")
        let after = (41...80).map { "word\($0)" }.joined(separator: " ")
        let text = before + " needle " + after
        let snippet = SearchText.snippet(text, query: ["needle"])
        XCTAssertTrue(snippet.hasPrefix("…"), snippet)
        XCTAssertTrue(snippet.hasSuffix("…"), snippet)
        XCTAssertTrue(snippet.contains("<mark>needle</mark>"), snippet)
        let shown = snippet.replacingOccurrences(of: "<mark>", with: "").replacingOccurrences(of: "</mark>", with: "")
        XCTAssertLessThanOrEqual(shown.count, SearchText.snippetWidth + 2, "about the width, plus two ellipses")
        let inner = shown.dropFirst().dropLast()
        XCTAssertTrue(text.contains(inner), "a contiguous part of the text")
        XCTAssertTrue(inner.first == "w" && inner.last!.isNumber, "cut between words, not inside one: \(inner)")
        XCTAssertFalse(SearchText.snippet("needle " + after, query: ["needle"]).hasPrefix("…"), "nothing cut before")
    }

    func testEveryCharacterOfTheSnippetIsEscapedOrMarkup() {
        let text = "<script>alert(\"x&y\")</script> alert"
        let snippet = SearchText.snippet(text, query: ["alert"])
        let withoutMarks = snippet.replacingOccurrences(of: "<mark>", with: "").replacingOccurrences(of: "</mark>", with: "")
        XCTAssertFalse(withoutMarks.contains("<") || withoutMarks.contains(">") || withoutMarks.contains("\""), snippet)
        XCTAssertEqual(snippet, "&lt;script&gt;<mark>alert</mark>(&quot;x&amp;y&quot;)&lt;/script&gt; <mark>alert</mark>")
    }
}
