import Foundation

// The words of search (docs/protocol.md "Search"), one rule for the index, the query and the
// snippet, pure so both stores and every client see the same words:
// - a word is a maximal run of Unicode letters, digits and combining marks; every other
//   character separates words; each CJK ideograph is a word on its own (Chinese and Japanese
//   are written without spaces, so a run of ideographs would be one unsearchable "word");
// - a word's term is the word lowercased, with the combining diacritical marks removed (é → e,
//   ά → α, й → и, as SQLite's unicode61 with remove_diacritics does), Greek final sigma as σ,
//   cut to `maxTermLength` characters;
// - a query's terms each match a message term that starts with them (a whole word is its own
//   prefix); a message matches when every query term matches one of its terms.
public enum SearchText {
    /// Characters (Unicode scalars) kept of a term; longer words are indexed and queried by
    /// their beginning.
    public static let maxTermLength = 32
    /// Words one query may hold.
    public static let maxQueryTerms = 8
    /// Characters of the text a snippet shows (ellipses and marks aside).
    public static let snippetWidth = 120

    /// One word of a text: where it is (scalar offsets) and its term.
    public struct Word: Equatable, Sendable {
        public var start: Int
        public var end: Int
        public var term: String
    }

    /// A query's terms, distinct, in order; nil when the query has more than `maxQueryTerms`
    /// distinct words. Empty when it has no word at all.
    public static func queryTerms(_ query: String) -> [String]? {
        let terms = self.terms(query)
        return terms.count > maxQueryTerms ? nil : terms
    }

    public struct QueryRefusal: Error, Equatable, Sendable {
        public let message: String
    }

    /// A query param's terms, or why it is refused (the `search` op and GET /v1/search alike).
    public static func parseQuery(_ query: String?) -> Result<[String], QueryRefusal> {
        guard let query, (1...ContractLimits.maxSearchQuery).contains(query.count) else {
            return .failure(QueryRefusal(message: "query must be a string of 1–\(ContractLimits.maxSearchQuery) characters"))
        }
        guard let terms = queryTerms(query) else {
            return .failure(QueryRefusal(message: "query may hold at most \(maxQueryTerms) words"))
        }
        guard !terms.isEmpty else { return .failure(QueryRefusal(message: "query must hold a word (letters or digits)")) }
        return .success(terms)
    }

    /// The distinct terms of a text, in first-seen order.
    public static func terms(_ text: String) -> [String] {
        if let ascii = asciiTerms(text) { return ascii }
        return termsOfWords(text)
    }

    /// `terms` by way of `words`: any text.
    static func termsOfWords(_ text: String) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for w in words(text) where seen.insert(w.term).inserted { out.append(w.term) }
        return out
    }

    /// `terms` of an all-ASCII text (most chat messages), read as bytes: the same words and
    /// terms as the scalar walk, at a fraction of its cost on every send. Nil when the text has
    /// a byte outside ASCII.
    static func asciiTerms(_ text: String) -> [String]? {
        var text = text
        return text.withUTF8 { bytes -> [String]? in
            guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
            var out: [String] = []
            var seen: Set<String>? = nil // a linear look is cheaper while the list is short
            var i = 0
            while i < bytes.count {
                guard isASCIIWordByte(bytes[i]) else { i += 1; continue }
                let start = i
                while i < bytes.count && isASCIIWordByte(bytes[i]) { i += 1 }
                let word = UnsafeBufferPointer(rebasing: bytes[start..<min(i, start + maxTermLength)])
                let term = asciiTerm(word)
                if var set = seen {
                    if set.insert(term).inserted { out.append(term) }
                    seen = set
                } else if !out.contains(term) {
                    out.append(term)
                    if out.count > 16 { seen = Set(out) }
                }
            }
            return out
        }
    }

    /// A letter or digit of ASCII: the bytes a word of an ASCII text is made of.
    static func isASCIIWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }

    /// An ASCII word's term: lowercased, written straight into the string (one of up to 15
    /// bytes is stored inline, with no allocation).
    static func asciiTerm(_ word: UnsafeBufferPointer<UInt8>) -> String {
        ASCII.lowercased(word)
    }

    /// Whether every query term starts a term of `termsOfText`.
    public static func matches(_ termsOfText: [String], query: [String]) -> Bool {
        query.allSatisfy { q in termsOfText.contains { $0.hasPrefix(q) } }
    }

    /// Whether `text` matches the query's terms.
    public static func matches(text: String, query: [String]) -> Bool {
        !query.isEmpty && matches(terms(text), query: query)
    }

    /// The words of `text` in order, with scalar offsets.
    public static func words(_ text: String) -> [Word] {
        var out: [Word] = []
        var current: [Unicode.Scalar] = []
        var start = 0
        var offset = 0
        func flush(_ end: Int) {
            guard !current.isEmpty else { return }
            let term = normalise(current)
            if !term.isEmpty { out.append(Word(start: start, end: end, term: term)) }
            current.removeAll(keepingCapacity: true)
        }
        for scalar in text.unicodeScalars {
            if !scalar.isASCII && scalar.properties.isIdeographic {
                flush(offset)
                start = offset
                current.append(scalar)
                flush(offset + 1)
            } else if isWordScalar(scalar) {
                if current.isEmpty { start = offset }
                current.append(scalar)
            } else {
                flush(offset)
            }
            offset += 1
        }
        flush(offset)
        return out
    }

    static func isWordScalar(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { return isASCIIWordByte(UInt8(s.value)) }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .enclosingMark:
            return true
        default:
            return false
        }
    }

    /// The combining diacritical marks removed from terms (the blocks of marks that decorate
    /// Latin, Greek and Cyrillic letters; scripts' own vowel signs stay).
    static func isDiacritic(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x0300...0x036F, 0x1AB0...0x1AFF, 0x1DC0...0x1DFF, 0x20D0...0x20FF, 0xFE20...0xFE2F: true
        default: false
        }
    }

    static func normalise(_ scalars: [Unicode.Scalar]) -> String {
        if scalars.allSatisfy(\.isASCII) {
            let bytes = scalars.prefix(maxTermLength).map { UInt8($0.value) }
            return bytes.withUnsafeBufferPointer(asciiTerm)
        }
        var word = String.UnicodeScalarView()
        word.append(contentsOf: scalars)
        let lowered = String(word).lowercased().decomposedStringWithCanonicalMapping
        var kept = String.UnicodeScalarView()
        for s in lowered.unicodeScalars where !isDiacritic(s) {
            kept.append(s.value == 0x03C2 ? "\u{03C3}" : s)
        }
        let composed = String(kept).precomposedStringWithCanonicalMapping
        return String(String.UnicodeScalarView(composed.unicodeScalars.prefix(maxTermLength)))
    }

    /// About `snippetWidth` characters of `text` around its first matching word, as safe HTML
    /// text: `&`, `<`, `>` and `"` as entities, each matching word inside `<mark>…</mark>`, `…`
    /// where the text was cut, line breaks and tabs as spaces. Nothing else is markup.
    public static func snippet(_ text: String, query: [String]) -> String {
        let scalars = Array(text.unicodeScalars)
        let words = self.words(text)
        let matching = words.filter { w in query.contains { w.term.hasPrefix($0) } }
        var from = 0, to = scalars.count
        if scalars.count > snippetWidth {
            let anchor = matching.first ?? words.first ?? Word(start: 0, end: 0, term: "")
            // Some context before the first match, then the rest of the width after it.
            from = max(0, anchor.start - snippetWidth / 4)
            if let cut = words.first(where: { $0.start < from && $0.end > from }) {
                from = cut.start >= anchor.start - snippetWidth / 2 ? cut.start : cut.end
            }
            to = min(scalars.count, from + snippetWidth)
            if to < scalars.count, let cut = words.first(where: { $0.start < to && $0.end > to }), cut.start > anchor.end {
                to = cut.start
                while to > anchor.end, scalars[to - 1].properties.isWhitespace { to -= 1 }
            }
            to = max(to, min(scalars.count, anchor.end))
        }
        var out = from > 0 ? "…" : ""
        var i = from
        var marks = matching.makeIterator()
        var next = marks.next()
        while let m = next, m.start < from { next = marks.next() }
        while i < to {
            if let m = next, m.start == i {
                let end = min(m.end, to)
                out += "<mark>"
                for s in scalars[i..<end] { append(s, to: &out) }
                out += "</mark>"
                i = end
                next = marks.next()
                continue
            }
            append(scalars[i], to: &out)
            i += 1
        }
        if to < scalars.count { out += "…" }
        return out
    }

    private static func append(_ s: Unicode.Scalar, to out: inout String) {
        switch s {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "\n", "\r", "\t": out += " "
        default: out.unicodeScalars.append(s)
        }
    }
}
