import Protocol

// What the hub sent on a connection, reduced to the fields the scenario measures. Two readers
// produce it: a field scanner (the default; it relies only on the hub writing compact JSON, so
// a key's quote is never escaped and `"seq":` cannot occur inside a string value) and the
// Protocol module's full JSONParser (`--parser json`), kept to cross-check the scanner and to
// show what full parsing costs.
struct Reply {
    var id: Int64
    var ok: Bool
    var seq: Int64 = -1
    var lastSeq: Int64 = -1
    var duplicate = false
    var errorCode = ""
}

enum Inbound {
    case reply(Reply)
    /// A `message` push: its seq and the monotonic send time written into its text (0 if the
    /// text is not one of ours).
    case message(seq: Int64, sentAt: UInt64)
    case otherPush
    case invalid
}

/// Message text: "lt <send time ns> <conversation> <n> " padded with x.
enum MessageText {
    static let marker: [UInt8] = Array("lt ".utf8)

    static func sentAt(_ text: UnsafeRawBufferPointer) -> UInt64 {
        guard text.count > 3, text[0] == marker[0], text[1] == marker[1], text[2] == marker[2] else { return 0 }
        return UInt64(max(0, FieldScanner.integer(text, at: 3) ?? 0))
    }
}

enum FieldScanner {
    private static let messagePrefix = Array(#"{"type":"message""#.utf8)
    private static let typePrefix = Array(#"{"type":"#.utf8)
    private static let idPrefix = Array(#"{"id":"#.utf8)
    private static let seqKey = Array(#""seq":"#.utf8)
    private static let lastSeqKey = Array(#""last_seq":"#.utf8)
    private static let textKey = Array(#""text":""#.utf8)
    private static let okTrue = Array(#""ok":true"#.utf8)
    private static let duplicateTrue = Array(#""duplicate":true"#.utf8)
    private static let codeKey = Array(#""code":""#.utf8)

    static func decode(_ b: UnsafeRawBufferPointer) -> Inbound {
        if hasPrefix(b, messagePrefix) {
            guard let s = find(seqKey, in: b, from: messagePrefix.count), let seq = integer(b, at: s + seqKey.count),
                  let t = find(textKey, in: b, from: s) else { return .invalid }
            let text = UnsafeRawBufferPointer(rebasing: b[(t + textKey.count)...])
            return .message(seq: seq, sentAt: MessageText.sentAt(text))
        }
        if hasPrefix(b, typePrefix) { return .otherPush }
        guard hasPrefix(b, idPrefix) else { return .invalid }
        var r = Reply(id: integer(b, at: idPrefix.count) ?? -1, ok: false)
        if find(okTrue, in: b, from: idPrefix.count) != nil {
            r.ok = true
            if let s = find(seqKey, in: b, from: idPrefix.count) { r.seq = integer(b, at: s + seqKey.count) ?? -1 }
            if let s = find(lastSeqKey, in: b, from: idPrefix.count) { r.lastSeq = integer(b, at: s + lastSeqKey.count) ?? -1 }
            r.duplicate = find(duplicateTrue, in: b, from: idPrefix.count) != nil
        } else if let c = find(codeKey, in: b, from: idPrefix.count) {
            var end = c + codeKey.count
            while end < b.count && b[end] != UInt8(ascii: "\"") { end += 1 }
            r.errorCode = String(decoding: b[(c + codeKey.count)..<end], as: UTF8.self)
        } else {
            r.errorCode = "unparsable"
        }
        return .reply(r)
    }

    @inline(__always)
    static func hasPrefix(_ b: UnsafeRawBufferPointer, _ p: [UInt8]) -> Bool {
        guard b.count >= p.count else { return false }
        for i in 0..<p.count where b[i] != p[i] { return false }
        return true
    }

    static func find(_ needle: [UInt8], in b: UnsafeRawBufferPointer, from: Int) -> Int? {
        let n = needle.count
        guard n > 0, b.count >= n else { return nil }
        let first = needle[0]
        var i = from
        let last = b.count - n
        outer: while i <= last {
            if b[i] == first {
                for j in 1..<n where b[i + j] != needle[j] { i += 1; continue outer }
                return i
            }
            i += 1
        }
        return nil
    }

    /// A decimal integer (optionally negative) starting at `at`.
    static func integer(_ b: UnsafeRawBufferPointer, at: Int) -> Int64? {
        var i = at
        var negative = false
        if i < b.count && b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var v: Int64 = 0
        let start = i
        while i < b.count, b[i] >= 48, b[i] <= 57, i - start < 18 {
            v = v * 10 + Int64(b[i] - 48)
            i += 1
        }
        guard i > start else { return nil }
        return negative ? -v : v
    }
}

enum FullParser {
    static func decode(_ b: UnsafeRawBufferPointer) -> Inbound {
        guard let v = try? JSONParser.parse(b, maxDepth: 16, maxBytes: FrameCodec.maxMessage) else { return .invalid }
        if let type = v["type"]?.stringValue {
            guard type == "message" else { return .otherPush }
            guard let seq = v["seq"]?.intValue else { return .invalid }
            var sentAt: UInt64 = 0
            if var text = v["text"]?.stringValue {
                sentAt = text.withUTF8 { MessageText.sentAt(UnsafeRawBufferPointer($0)) }
            }
            return .message(seq: seq, sentAt: sentAt)
        }
        guard let idValue = v["id"] else { return .invalid }
        var r = Reply(id: idValue.intValue ?? -1, ok: v["ok"]?.boolValue == true)
        if r.ok {
            let result = v["result"]
            r.seq = result?["seq"]?.intValue ?? -1
            r.lastSeq = result?["last_seq"]?.intValue ?? -1
            r.duplicate = result?["duplicate"]?.boolValue == true
        } else {
            r.errorCode = v["error"]?["code"]?.stringValue ?? "unparsable"
        }
        return .reply(r)
    }
}
