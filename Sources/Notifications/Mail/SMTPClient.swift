import Core
import Glibc

// The SMTP client: one blocking conversation per mail with a local relay over plain TCP
// (no TLS, no AUTH). It owns its socket from connect to close and never runs on an event loop.
// Parsing and composition live in SMTPReply.swift and MailComposer.swift; this file is the I/O
// and the mapping of each step's reply to an outcome.

public struct SMTPConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// Envelope sender and From: address.
    public var from: String
    public var heloName: String
    /// Bound for connecting, for each write and for each whole reply.
    public var timeoutMs: Int

    public init(host: String, port: Int, from: String, heloName: String = "montrose-hub", timeoutMs: Int = 10_000) {
        self.host = host
        self.port = port
        self.from = from
        self.heloName = heloName
        self.timeoutMs = timeoutMs
    }

    /// Parses "host:port" (also "[::1]:25"); nil when malformed or port not 1...65535.
    /// The brackets are not kept in `host`.
    public static func parse(_ hostPort: String, from: String) -> SMTPConfiguration? {
        let host: Substring
        let portText: Substring
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { return nil }
            host = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let rest = hostPort[hostPort.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = hostPort.lastIndex(of: ":") else { return nil }
            host = hostPort[..<colon]
            portText = hostPort[hostPort.index(after: colon)...]
            if host.contains(":") { return nil }  // a bare IPv6 address must be bracketed
        }
        guard !host.isEmpty,
              host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "[") && $0 != UInt8(ascii: "]") && $0 != UInt8(ascii: "/") }),
              (1...5).contains(portText.utf8.count),
              portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let port = Int(portText), (1...65_535).contains(port)
        else { return nil }
        return SMTPConfiguration(host: String(host), port: port, from: from)
    }
}

public struct MailMessage: Sendable, Equatable {
    public var to: String
    public var subject: String
    /// Plain text, UTF-8; line breaks are sent as CRLF.
    public var body: String

    public init(to: String, subject: String, body: String) {
        self.to = to
        self.subject = subject
        self.body = body
    }
}

public enum SMTPOutcome: Sendable, Equatable {
    case sent
    /// Connect failure, timeout, dropped connection, garbage or oversized reply, any 4xx reply,
    /// or the relay refusing the session itself (greeting or HELO): retry later.
    case transient(String)
    /// Any 5xx reply at MAIL, RCPT or DATA, or an address or subject that cannot be sent: never retry.
    case permanent(String)
}

public enum SMTPClient {
    /// The QUIT reply is only a courtesy once the mail is accepted; do not wait long for it.
    static let quitWaitMs = 1_000
    /// `timeoutMs` is clamped to a day so deadline arithmetic cannot overflow.
    static let maxTimeoutMs = 86_400_000

    /// Blocking: called on the mailer's own thread, never on an event loop. One connection per call.
    public static func send(_ mail: MailMessage, with config: SMTPConfiguration) -> SMTPOutcome {
        if let r = MailComposer.validateAddress(config.from) { return .permanent("sender: \(r.reason)") }
        if let r = MailComposer.validateAddress(mail.to) { return .permanent("recipient: \(r.reason)") }
        if let r = MailComposer.validateSubject(mail.subject) { return .permanent(r.reason) }
        // Configuration mistakes are transient: the mail waits for a fixed configuration.
        guard !config.heloName.isEmpty,
              config.heloName.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return .transient("configuration: HELO name is not a plain domain") }
        guard (1...65_535).contains(config.port) else { return .transient("configuration: port \(config.port) out of range") }

        let now = Int64(time(nil))
        let unique = String(now, radix: 36) + "." + String(UInt64.random(in: .min ... .max), radix: 36)
        let message = MailComposer.compose(mail, from: config.from,
                                           date: MailComposer.rfc5322Date(secondsSince1970: now),
                                           messageID: MailComposer.messageID(unique: unique, from: config.from))
        let payload = MailComposer.dataPayload(message)

        let timeout = min(max(1, config.timeoutMs), maxTimeoutMs)
        let connection: SMTPConnection
        do {
            connection = try SMTPConnection(host: config.host, port: config.port, timeoutMs: timeout)
        } catch {
            return .transient(error.description)
        }
        // `connection` closes its socket in deinit, on every path out of here.
        return converse(connection, payload: payload, mail: mail, config: config)
    }

    private static func converse(_ c: SMTPConnection, payload: [UInt8], mail: MailMessage, config: SMTPConfiguration) -> SMTPOutcome {
        do {
            let greeting = try c.readReply()
            guard greeting.code == 220 else { return quitting(c, .transient("greeting: \(greeting.code) \(greeting.text)")) }

            var hello = try c.command("EHLO \(config.heloName)")
            if hello.kind == 5 { hello = try c.command("HELO \(config.heloName)") }
            guard hello.kind == 2 else { return quitting(c, .transient("HELO: \(hello.code) \(hello.text)")) }

            let steps: [(command: [UInt8], stage: Stage)] = [
                (Array("MAIL FROM:<\(config.from)>\r\n".utf8), .mail),
                (Array("RCPT TO:<\(mail.to)>\r\n".utf8), .rcpt),
                (Array("DATA\r\n".utf8), .data),
                (payload, .message),
            ]
            for step in steps {
                try c.write(step.command)
                let reply = try c.readReply()
                if let failure = classify(reply, at: step.stage) { return quitting(c, failure) }
            }
            _ = quitting(c, .sent, waitMs: min(quitWaitMs, c.timeoutMs))
            return .sent
        } catch {
            return .transient(error.description)
        }
    }

    /// Says QUIT politely after a reply we did not like (the server is responsive), ignoring
    /// whatever happens: the outcome is already decided.
    private static func quitting(_ c: SMTPConnection, _ outcome: SMTPOutcome, waitMs: Int? = nil) -> SMTPOutcome {
        c.timeoutMs = waitMs ?? min(quitWaitMs, c.timeoutMs)
        _ = try? c.command("QUIT")
        return outcome
    }

    enum Stage: String, Sendable {
        case mail = "MAIL FROM"
        case rcpt = "RCPT TO"
        case data = "DATA"
        case message = "message"

        var expected: Set<Int> {
            switch self {
            case .mail: return [250]
            case .rcpt: return [250, 251]
            case .data: return [354]
            case .message: return [250]
            }
        }
    }

    /// nil when the reply lets the transaction go on; otherwise the outcome it decides.
    static func classify(_ reply: SMTPReply, at stage: Stage) -> SMTPOutcome? {
        if stage.expected.contains(reply.code) { return nil }
        let what = "\(stage.rawValue): \(reply.code) \(reply.text)"
        switch reply.kind {
        case 5: return .permanent(what)
        case 4: return .transient(what)
        default: return .transient("unexpected reply at \(what)")
        }
    }
}

enum SMTPConnectionError: Error, CustomStringConvertible {
    case resolve(String)
    case connect(String)
    case timeout(String)
    case closed
    case io(String, Int32)
    case reply(SMTPReplyError)

    var description: String {
        switch self {
        case .resolve(let m): return "cannot resolve: \(m)"
        case .connect(let m): return "cannot connect: \(m)"
        case .timeout(let m): return "timed out \(m)"
        case .closed: return "connection closed by the server"
        case .io(let op, let e): return "\(op) failed: \(String(cString: strerror(e)))"
        case .reply(let e): return "bad reply: \(e)"
        }
    }
}

/// Owns one non-blocking socket; every wait is a poll with a deadline. Not Sendable: it lives
/// and dies inside one `SMTPClient.send` call.
final class SMTPConnection {
    private let fd: Int32
    var timeoutMs: Int
    private var parser = SMTPReplyParser()

    init(host: String, port: Int, timeoutMs: Int) throws(SMTPConnectionError) {
        self.timeoutMs = timeoutMs
        let deadline = Self.nowMs() + timeoutMs
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw .resolve("\(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(first) }

        var lastError = SMTPConnectionError.connect("\(host):\(port): no address")
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let ai = entry {
            entry = ai.pointee.ai_next
            let s = socket(ai.pointee.ai_family,
                           Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                           ai.pointee.ai_protocol)
            if s < 0 { lastError = .io("socket", errno); continue }
            if Self.connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen, deadline: deadline, error: &lastError, host: host, port: port) {
                fd = s
                return
            }
            close(s)
            if Self.nowMs() >= deadline { break }
        }
        throw lastError
    }

    deinit { close(fd) }

    private static func connect(_ s: Int32, _ addr: UnsafeMutablePointer<sockaddr>?, _ len: socklen_t, deadline: Int,
                                error: inout SMTPConnectionError, host: String, port: Int) -> Bool {
        if Glibc.connect(s, addr, len) == 0 { return true }
        guard errno == EINPROGRESS || errno == EINTR else {
            error = .connect("\(host):\(port): \(String(cString: strerror(errno)))")
            return false
        }
        switch waitFor(s, events: Int16(POLLOUT), deadline: deadline) {
        case .ready:
            var soError: Int32 = 0
            var size = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(s, SOL_SOCKET, SO_ERROR, &soError, &size) == 0 else {
                error = .io("getsockopt", errno)
                return false
            }
            if soError == 0 { return true }
            error = .connect("\(host):\(port): \(String(cString: strerror(soError)))")
            return false
        case .timedOut:
            error = .timeout("connecting to \(host):\(port)")
            return false
        case .failed(let e):
            error = .io("poll", e)
            return false
        }
    }

    func command(_ line: String) throws(SMTPConnectionError) -> SMTPReply {
        try write(Array((line + "\r\n").utf8))
        return try readReply()
    }

    /// Sends everything; the deadline restarts whenever the peer takes some bytes.
    func write(_ bytes: [UInt8]) throws(SMTPConnectionError) {
        var offset = 0
        var deadline = Self.nowMs() + timeoutMs
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { p in
                Glibc.send(fd, p.baseAddress.map { $0 + offset }, p.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                offset += n
                deadline = Self.nowMs() + timeoutMs
                continue
            }
            let e = errno
            guard n < 0, e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
                throw e == EPIPE || e == ECONNRESET ? .closed : .io("send", e)
            }
            switch Self.waitFor(fd, events: Int16(POLLOUT), deadline: deadline) {
            case .ready: continue
            case .timedOut: throw .timeout("writing to the server")
            case .failed(let e): throw .io("poll", e)
            }
        }
    }

    /// The next whole reply, which must arrive within `timeoutMs`; the parser bounds its size.
    func readReply() throws(SMTPConnectionError) -> SMTPReply {
        let deadline = Self.nowMs() + timeoutMs
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while true {
            do {
                if let reply = try parser.next() { return reply }
            } catch {
                throw .reply(error)
            }
            switch Self.waitFor(fd, events: Int16(POLLIN), deadline: deadline) {
            case .ready: break
            case .timedOut: throw .timeout("waiting for a reply")
            case .failed(let e): throw .io("poll", e)
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                parser.append(chunk[0..<n])
            } else if n == 0 {
                throw .closed
            } else {
                let e = errno
                guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
                    throw e == ECONNRESET ? .closed : .io("recv", e)
                }
            }
        }
    }

    enum Wait { case ready, timedOut, failed(Int32) }

    /// Polls one fd until an event, the deadline, or an error; EINTR retries with the time left.
    /// POLLERR/POLLHUP count as ready so the following send/recv reports the real error.
    static func waitFor(_ fd: Int32, events: Int16, deadline: Int) -> Wait {
        while true {
            let left = deadline - nowMs()
            if left <= 0 { return .timedOut }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&p, 1, Int32(min(left, Int(Int32.max))))
            if rc > 0 { return .ready }
            if rc == 0 { return .timedOut }
            if errno != EINTR { return .failed(errno) }
        }
    }

    static func nowMs() -> Int { Int(monotonicMillis()) }
}
