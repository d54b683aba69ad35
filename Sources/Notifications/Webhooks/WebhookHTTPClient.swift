import Core
import Glibc
import Protocol

// The webhook's HTTP/1.1 client: one blocking POST per attempt, on the deliverer's own thread
// (never a loop), over plain TCP or TLS (WebhookTLS.swift). A non-blocking socket under poll,
// so every step has a deadline: connecting, the TLS handshake and writing the request, and
// reading the answer's status line. Only the status matters; the
// connection closes after it (`Connection: close`), the rest of the answer unread.
public enum WebhookHTTPClient {
    public struct Timeouts: Sendable, Equatable {
        /// Name resolution is the system resolver's (its own timeouts, resolv.conf); this
        /// bounds the TCP connect to all the addresses it returned together.
        public var connectMs = 5_000
        /// The TLS handshake (https) and the whole request, written.
        public var writeMs = 10_000
        /// From the request written to the status line read.
        public var responseMs = 10_000
        public init() {}
    }

    /// Longest status line and headers read before the status is known (an answer that sends
    /// more without a line break is not HTTP).
    static let maxStatusBytes = 8_192
    static let userAgent = "montrose-hub/0.9 (webhooks)"

    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case resolve(String), connect(String), timeout(String), closed, io(String), badAnswer, tls(String)
        /// `cancelled` answered true (the hub is stopping) before the answer came.
        case cancelled

        public var description: String {
            switch self {
            case .resolve(let m): return "cannot resolve: \(m)"
            case .connect(let m): return "cannot connect: \(m)"
            case .timeout(let m): return "timed out \(m)"
            case .closed: return "the receiver closed the connection before answering"
            case .io(let m): return m
            case .badAnswer: return "the answer is not HTTP/1.x"
            case .tls(let m): return "TLS: \(m)"
            case .cancelled: return "cut short: the hub is stopping"
            }
        }
    }

    /// The request bytes (pure: tests compare them).
    static func request(_ endpoint: WebhookEndpoint, body: [UInt8], signature: String) -> [UInt8] {
        let head = "POST \(endpoint.target) HTTP/1.1\r\nHost: \(endpoint.hostHeader)\r\nUser-Agent: \(userAgent)\r\n" +
            "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" +
            "\(WebhookSignature.headerName): \(signature)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// The status of `HTTP/1.x NNN …` at the start of `bytes`: nil while the line is
    /// incomplete, `.failure` when it is not a status line.
    static func status(in bytes: [UInt8]) -> Result<Int, Failure>? {
        guard let lf = bytes.firstIndex(of: 0x0A) else { return bytes.count > maxStatusBytes ? .failure(.badAnswer) : nil }
        let end = lf > 0 && bytes[lf - 1] == 0x0D ? lf - 1 : lf
        let line = String(decoding: bytes[..<end], as: UTF8.self)
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0] == "HTTP/1.1" || parts[0] == "HTTP/1.0", parts[1].count == 3,
              let code = Int(parts[1]), (100...599).contains(code) else { return .failure(.badAnswer) }
        return .success(code)
    }

    /// POSTs `body` and returns the answer's status; over TLS (`tls`) for an https endpoint.
    /// `cancelled` is asked at least every `cancelCheckMs` while waiting: a stopping hub does
    /// not wait out the timeouts.
    public static func post(_ endpoint: WebhookEndpoint, body: [UInt8], signature: String, timeouts: Timeouts = Timeouts(),
                            tls: WebhookTLS? = nil, cancelled: () -> Bool = { false }) -> Result<Int, Failure> {
        let fd: Int32
        switch connect(endpoint, deadline: nowMs() + timeouts.connectMs, cancelled) {
        case .success(let s): fd = s
        case .failure(let f): return .failure(f)
        }
        defer { close(fd) }
        do throws(Failure) {
            let writeDeadline = nowMs() + timeouts.writeMs
            var session: WebhookTLSSession?
            if endpoint.tls {
                guard let tls else { return .failure(.tls("no TLS context for an https:// URL")) }
                let s = try WebhookTLSSession(tls, fd: fd, host: endpoint.host)
                // The handshake counts in the request's write time.
                guard try drive({ () throws(Failure) in try s.handshake() }, fd, writeDeadline, "in the TLS handshake", cancelled) != nil
                else { return .failure(.closed) }
                session = s
            }
            let bytes = request(endpoint, body: body, signature: signature)
            var offset = 0
            while offset < bytes.count {
                let sent = bytes.withUnsafeBytes { p in
                    let rest = UnsafeRawBufferPointer(rebasing: p[offset...])
                    return Result { () throws(Failure) -> Int? in
                        try drive({ () throws(Failure) in
                            if let session { return try session.write(rest) }
                            return try plain(send(fd, rest.baseAddress, rest.count, Int32(MSG_NOSIGNAL)), writing: true)
                        }, fd, writeDeadline, "writing the request", cancelled)
                    }
                }
                guard let n = try sent.get() else { return .failure(.closed) }
                offset += n
            }
            var answer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 2_048)
            let readDeadline = nowMs() + timeouts.responseMs
            while true {
                if let status = status(in: answer) { return status }
                let read = chunk.withUnsafeMutableBytes { p in
                    Result { () throws(Failure) -> Int? in
                        try drive({ () throws(Failure) in
                            if let session { return try session.read(p) }
                            return try plain(recv(fd, p.baseAddress, p.count, 0), writing: false)
                        }, fd, readDeadline, "waiting for the answer", cancelled)
                    }
                }
                guard let n = try read.get() else { return .failure(answer.isEmpty ? .closed : .badAnswer) }
                answer.append(contentsOf: chunk[0..<n])
            }
        } catch {
            return .failure(error)
        }
    }

    /// A socket call's result as a step: bytes moved, the direction to wait for, or the end.
    private static func plain(_ n: Int, writing: Bool) throws(Failure) -> WebhookTLSSession.Step {
        if n > 0 { return .done(n) }
        if n == 0 && !writing { return .closed }
        let e = errno
        if e == EAGAIN || e == EWOULDBLOCK || e == EINTR { return writing ? .wantWrite : .wantRead }
        if e == EPIPE || e == ECONNRESET { return .closed }
        throw .io("\(writing ? "send" : "recv") failed: \(String(cString: strerror(e)))")
    }

    /// Repeats `op` until it moves bytes (their count) or meets the end (nil), waiting in the
    /// direction it asks for until `deadline`.
    private static func drive(_ op: () throws(Failure) -> WebhookTLSSession.Step, _ fd: Int32, _ deadline: Int, _ what: String,
                              _ cancelled: () -> Bool) throws(Failure) -> Int? {
        while true {
            let events: Int16
            switch try op() {
            case .done(let n): return n
            case .closed: return nil
            case .wantRead: events = Int16(POLLIN)
            case .wantWrite: events = Int16(POLLOUT)
            }
            switch waitFor(fd, events: events, deadline: deadline, cancelled) {
            case .ready: continue
            case .timedOut: throw .timeout(what)
            case .cancelled: throw .cancelled
            }
        }
    }

    private static func connect(_ endpoint: WebhookEndpoint, deadline: Int, _ cancelled: () -> Bool) -> Result<Int32, Failure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list)
        guard rc == 0, let first = list else { return .failure(.resolve("\(endpoint.host): \(String(cString: gai_strerror(rc)))")) }
        defer { freeaddrinfo(first) }
        var failure = Failure.connect("\(endpoint.logName): no address")
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let ai = entry, nowMs() < deadline {
            entry = ai.pointee.ai_next
            let s = socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                           ai.pointee.ai_protocol)
            guard s >= 0 else { failure = .io("socket failed: \(String(cString: strerror(errno)))"); continue }
            if Glibc.connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return .success(s) }
            if errno == EINPROGRESS || errno == EINTR {
                switch waitFor(s, events: Int16(POLLOUT), deadline: deadline, cancelled) {
                case .ready:
                    var soError: Int32 = 0
                    var size = socklen_t(MemoryLayout<Int32>.size)
                    if getsockopt(s, SOL_SOCKET, SO_ERROR, &soError, &size) == 0 && soError == 0 { return .success(s) }
                    failure = .connect("\(endpoint.logName): \(String(cString: strerror(soError)))")
                case .timedOut:
                    failure = .timeout("connecting to \(endpoint.logName)")
                case .cancelled:
                    close(s)
                    return .failure(.cancelled)
                }
            } else {
                failure = .connect("\(endpoint.logName): \(String(cString: strerror(errno)))")
            }
            close(s)
        }
        return .failure(failure)
    }

    /// How often a wait asks whether to give up.
    static let cancelCheckMs = 100

    enum Wait { case ready, timedOut, cancelled }

    /// Ready when `fd` is ready (or has an error the next call reports) before `deadline`.
    private static func waitFor(_ fd: Int32, events: Int16, deadline: Int, _ cancelled: () -> Bool) -> Wait {
        while true {
            if cancelled() { return .cancelled }
            let left = deadline - nowMs()
            if left <= 0 { return .timedOut }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&p, 1, Int32(min(left, cancelCheckMs)))
            if rc > 0 { return .ready }
            if rc < 0 && errno != EINTR { return .timedOut }
        }
    }

    static func nowMs() -> Int { Int(monotonicMillis()) }
}
