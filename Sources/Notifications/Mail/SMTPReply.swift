// SMTP reply parsing (RFC 5321 §4.2): pure, no sockets. The client feeds whatever bytes a read
// returned and asks for the next complete reply; bytes after it stay buffered for the next one.

/// One complete server reply: its three-digit code and the text of each line (without the
/// code, the separator and the line ending).
public struct SMTPReply: Sendable, Equatable {
    public var code: Int
    public var lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// 2 = positive completion, 3 = intermediate, 4 = transient failure, 5 = permanent failure.
    public var kind: Int { code / 100 }
    public var text: String { lines.joined(separator: " ") }
}

public enum SMTPReplyError: Error, Sendable, Equatable {
    /// A line longer than `SMTPReplyParser.maxLineBytes` (CRLF included).
    case lineTooLong
    /// A reply whose lines together exceed `maxReplyBytes` or `maxReplyLines`.
    case replyTooLarge
    /// A line that does not start with a code in 200...599 followed by ' ', '-' or the line end,
    /// or a continuation line whose code differs from the first line's.
    case malformed(String)
}

public struct SMTPReplyParser: Sendable {
    /// RFC 5321 §4.5.3.1.5 allows 512 octets per reply line; 1000 leaves room for chatty relays.
    public static let maxLineBytes = 1_000
    /// A multi-line reply (EHLO lists extensions) is bounded as a whole, so a server that keeps
    /// sending `250-` lines cannot make us buffer without end.
    public static let maxReplyBytes = 64 * 1_024
    public static let maxReplyLines = 200

    private var buffer: [UInt8] = []
    private var scanned = 0          // bytes of `buffer` already known to contain no LF
    private var pendingLines: [String] = []
    private var pendingCode: Int?
    private var pendingBytes = 0

    public init() {}

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// The next complete reply, or nil when more bytes are needed. After an error the parser is
    /// unusable (the connection must be dropped).
    public mutating func next() throws(SMTPReplyError) -> SMTPReply? {
        while true {
            guard let lf = buffer[scanned...].firstIndex(of: UInt8(ascii: "\n")) else {
                scanned = buffer.count
                if buffer.count > Self.maxLineBytes { throw .lineTooLong }
                return nil
            }
            let lineLength = lf + 1
            if lineLength > Self.maxLineBytes { throw .lineTooLong }
            var end = lf
            if end > 0, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = Array(buffer[0..<end])
            buffer.removeFirst(lineLength)
            scanned = 0

            pendingBytes += lineLength
            if pendingBytes > Self.maxReplyBytes || pendingLines.count >= Self.maxReplyLines {
                throw .replyTooLarge
            }
            let (code, isLast, text) = try Self.parseLine(line)
            if let first = pendingCode, first != code {
                throw .malformed("continuation code \(code) differs from \(first)")
            }
            pendingCode = code
            pendingLines.append(text)
            if isLast {
                let reply = SMTPReply(code: code, lines: pendingLines)
                pendingLines = []
                pendingCode = nil
                pendingBytes = 0
                return reply
            }
        }
    }

    /// Parses one reply line without its line ending: "250-text", "250 text" or "250".
    static func parseLine(_ line: [UInt8]) throws(SMTPReplyError) -> (code: Int, isLast: Bool, text: String) {
        guard line.count >= 3 else { throw .malformed(Self.preview(line)) }
        var code = 0
        for b in line[0..<3] {
            guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { throw .malformed(Self.preview(line)) }
            code = code * 10 + Int(b - UInt8(ascii: "0"))
        }
        guard (200...599).contains(code) else { throw .malformed(Self.preview(line)) }
        if line.count == 3 { return (code, true, "") }
        let separator = line[3]
        guard separator == UInt8(ascii: " ") || separator == UInt8(ascii: "-") else {
            throw .malformed(Self.preview(line))
        }
        let text = String(decoding: line[4...], as: UTF8.self)
        return (code, separator == UInt8(ascii: " "), text)
    }

    private static func preview(_ line: [UInt8]) -> String {
        String(decoding: line.prefix(80), as: UTF8.self)
    }

    /// Parses a whole string that must hold exactly one complete reply (for tests and tools).
    public static func parse(_ text: String) throws(SMTPReplyError) -> SMTPReply? {
        var parser = SMTPReplyParser()
        parser.append(text.utf8)
        return try parser.next()
    }
}
