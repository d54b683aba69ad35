// Message composition for the SMTP client: pure functions, no sockets, no clock (the date and
// the Message-ID are passed in). The body travels as base64 text/plain (RFC 2045), so the DATA
// payload is 7-bit, its lines are short, and no line can begin with a dot; dot-stuffing and the
// terminator are still applied so the payload is correct whatever is composed.

public enum MailComposer {
    public enum Rejection: Error, Sendable, Equatable {
        case emptyAddress
        case addressWithLineBreak
        case addressWithoutAt
        /// Controls, spaces, angle brackets or non-ASCII (no SMTPUTF8 here), or over 254 bytes.
        case unsendableAddress
        case subjectWithLineBreak

        public var reason: String {
            switch self {
            case .emptyAddress: return "empty address"
            case .addressWithLineBreak: return "address contains CR or LF"
            case .addressWithoutAt: return "address has no '@'"
            case .unsendableAddress: return "address cannot be sent to"
            case .subjectWithLineBreak: return "subject contains CR or LF"
            }
        }
    }

    /// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
    public static let maxAddressBytes = 254
    /// Base64 body lines (RFC 2045 §6.8).
    public static let base64LineLength = 76

    /// Checks an envelope address before any connection is made: what fails here fails forever.
    public static func validateAddress(_ address: String) -> Rejection? {
        if address.isEmpty { return .emptyAddress }
        let bytes = Array(address.utf8)
        if bytes.contains(where: { $0 == 0x0D || $0 == 0x0A }) { return .addressWithLineBreak }
        if !bytes.contains(UInt8(ascii: "@")) { return .addressWithoutAt }
        if bytes.count > maxAddressBytes { return .unsendableAddress }
        for b in bytes where b <= 0x20 || b >= 0x7F || b == UInt8(ascii: "<") || b == UInt8(ascii: ">") {
            return .unsendableAddress
        }
        if bytes.first == UInt8(ascii: "@") || bytes.last == UInt8(ascii: "@") { return .unsendableAddress }
        return nil
    }

    public static func validateSubject(_ subject: String) -> Rejection? {
        subject.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }) ? .subjectWithLineBreak : nil
    }

    /// The complete message (headers, blank line, base64 body), lines ending in CRLF, before
    /// dot-stuffing. Callers validate addresses and subject first.
    public static func compose(_ mail: MailMessage, from: String, date: String, messageID: String) -> String {
        var out = ""
        out += "From: \(from)\r\n"
        out += "To: \(mail.to)\r\n"
        out += "Subject: \(encodeHeaderValue(mail.subject))\r\n"
        out += "Date: \(date)\r\n"
        out += "Message-ID: \(messageID)\r\n"
        out += "MIME-Version: 1.0\r\n"
        out += "Content-Type: text/plain; charset=utf-8\r\n"
        out += "Content-Transfer-Encoding: base64\r\n"
        out += "\r\n"
        out += base64Lines(Array(canonicalLineEndings(mail.body).utf8))
        return out
    }

    /// The DATA payload: dot-stuffed (RFC 5321 §4.5.2) and ending in CRLF "." CRLF.
    public static func dataPayload(_ message: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.utf8.count + 16)
        var atLineStart = true
        for b in message.utf8 {
            if atLineStart && b == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out.append(b)
            atLineStart = b == 0x0A
        }
        if !(out.count >= 2 && out[out.count - 2] == 0x0D && out[out.count - 1] == 0x0A) {
            out += [0x0D, 0x0A]
        }
        out += Array(".\r\n".utf8)
        return out
    }

    /// Text bodies are encoded in canonical form (RFC 2049 §4): every line break becomes CRLF.
    public static func canonicalLineEndings(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var previousCR = false
        for b in text.utf8 {
            if b == 0x0A {
                if !previousCR { out.append(0x0D) }
                out.append(0x0A)
                previousCR = false
            } else {
                if previousCR { out.append(0x0A) }
                out.append(b)
                previousCR = b == 0x0D
            }
        }
        if previousCR { out.append(0x0A) }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: header encoding

    /// A header value as is when it is printable ASCII that cannot be mistaken for an encoded
    /// word and fits a line; otherwise RFC 2047 `=?UTF-8?B?...?=` words, each at most 75
    /// characters and holding whole characters, folded with CRLF SP.
    public static func encodeHeaderValue(_ value: String) -> String {
        let bytes = Array(value.utf8)
        let plain = bytes.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
            && !value.contains("=?") && bytes.count <= 900
        if plain { return value }

        // 75 - "=?UTF-8?B?".count - "?=".count = 63 base64 characters: 45 bytes of text.
        let maxChunk = 45
        var words: [String] = []
        var chunk: [UInt8] = []
        for scalar in value.unicodeScalars {
            let encoded = Array(String(scalar).utf8)
            if chunk.count + encoded.count > maxChunk {
                words.append("=?UTF-8?B?" + base64(chunk) + "?=")
                chunk = []
            }
            chunk += encoded
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?UTF-8?B?" + base64(chunk) + "?=") }
        return words.joined(separator: "\r\n ")
    }

    // MARK: base64

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)],
                    alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Base64 in lines of at most 76 characters, each ending in CRLF (empty input: no lines).
    public static func base64Lines(_ bytes: [UInt8]) -> String {
        let encoded = Array(base64(bytes).utf8)
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count + encoded.count / base64LineLength * 2 + 2)
        var i = 0
        while i < encoded.count {
            let end = min(i + base64LineLength, encoded.count)
            out += encoded[i..<end]
            out += [0x0D, 0x0A]
            i = end
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: date and Message-ID

    private static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// RFC 5322 §3.3 date in UTC, e.g. "Tue, 25 Nov 2025 13:02:00 +0000".
    public static func rfc5322Date(secondsSince1970 t: Int64) -> String {
        let days = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
        let secs = t - days * 86_400
        let (y, m, d) = civilDate(daysSince1970: days)
        let weekday = weekdays[Int(((days % 7) + 7) % 7)]
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(weekday), \(d) \(months[Int(m - 1)]) \(y) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) +0000"
    }

    /// Days since 1970-01-01 to (year, month 1...12, day 1...31), proleptic Gregorian
    /// (Howard Hinnant's `civil_from_days`).
    static func civilDate(daysSince1970: Int64) -> (Int64, Int64, Int64) {
        let z = daysSince1970 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// "<unique@domain>" with the domain taken from the sender address (RFC 5322 §3.6.4).
    public static func messageID(unique: String, from: String) -> String {
        let domain = from.split(separator: "@").last.map(String.init) ?? "localhost"
        return "<\(unique)@\(domain.isEmpty ? "localhost" : domain)>"
    }
}
