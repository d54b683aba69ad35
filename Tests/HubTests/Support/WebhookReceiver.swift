import COpenSSL
import Core
import Foundation
import Glibc

// An in-test HTTP/1.1 receiver on 127.0.0.1, as a platform backend would run one for webhooks:
// a thread accepts, each connection gets its own thread that reads one request (headers and a
// Content-Length body, every read with a deadline), records it with its arrival time, and
// answers the next scripted status (200 when the script is empty).
//
// Sendable without @unchecked: the mutable state lives in a Locked (a pthread mutex); the
// listening fd is closed by `stop()` after the accept thread has seen `stopped`.
final class WebhookReceiver: Sendable {
    struct Request: Sendable {
        var method: String
        var target: String
        /// Header names lower-cased.
        var headers: [String: String]
        var body: [UInt8]
        /// Wall clock (ms) when the whole request had arrived.
        var receivedAt: Int64
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    private struct State {
        var requests: [Request] = []
        var script: [Int] = []
        var stopped = false
        var failedHandshakes = 0
    }

    let port: Int
    /// Set: the receiver speaks TLS (https) with this certificate.
    private let tls: ServerTLS?
    private let listenFD: Int32
    private let state = Locked(State())
    private let acceptDone = DispatchSemaphore(value: 0)

    /// `port` 0: any free port; another: that one (a receiver coming back where it was).
    /// `tls`: serve https with this certificate and key.
    init(port: Int = 0, tls: (cert: String, key: String)? = nil) throws {
        self.tls = try tls.map { try ServerTLS(cert: $0.cert, key: $0.key) }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestError("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 32) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { close(fd); throw TestError("bind/listen on \(port): errno \(errno)") }
        listenFD = fd
        self.port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in acceptLoop() }.start()
    }

    var url: String { "http://127.0.0.1:\(port)/hooks/montrose?src=test" }

    /// TLS handshakes that failed (the client refused the certificate, say).
    var failedHandshakes: Int { state.withLock { $0.failedHandshakes } }

    /// The statuses of the next answers, in order; 0: no answer at all (the connection is held
    /// open, silent, until the receiver stops or 30 s pass).
    func script(_ statuses: [Int]) { state.withLock { $0.script += statuses } }

    var requests: [Request] { state.withLock { $0.requests } }

    /// Waits until `count` requests have arrived (nil after `timeout` seconds).
    func waitFor(_ count: Int, timeout: TimeInterval = 15) -> [Request]? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let r = requests
            if r.count >= count { return r }
            usleep(20_000)
        }
        return nil
    }

    /// Stops accepting and closes the port (connections in hand finish on their own threads).
    func stop() {
        guard !state.withLock({ s in defer { s.stopped = true }; return s.stopped }) else { return }
        _ = acceptDone.wait(timeout: .now() + 5)
        close(listenFD)
    }

    deinit { stop() }

    private func acceptLoop() {
        defer { acceptDone.signal() }
        while !state.withLock({ $0.stopped }) {
            var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let c = accept(listenFD, nil, nil)
            guard c >= 0 else { continue }
            Thread { [self] in serve(c) }.start()
        }
    }

    /// Reads one request within 10 s, records it, answers (or not), closes.
    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var session: OpaquePointer?
        defer { if let session { SSL_free(session) } }
        if let tls {
            // Blocking reads and writes bounded by socket timeouts: a test's receiver only.
            var limit = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            session = SSL_new(tls.ctx)
            SSL_set_fd(session, fd)
            guard SSL_accept(session) == 1 else {
                state.withLock { $0.failedHandshakes += 1 }
                return
            }
        }
        let deadline = wallMillis() + 10_000
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        var headerEnd: Int?
        var contentLength = 0
        while headerEnd.map({ buffer.count < $0 + contentLength }) ?? true {
            let left = deadline - wallMillis()
            guard left > 0 else { return }
            let n: Int
            if let session {
                n = Int(SSL_read(session, &chunk, Int32(chunk.count)))
            } else {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&p, 1, Int32(left)) > 0 else { return }
                n = recv(fd, &chunk, chunk.count, 0)
            }
            guard n > 0 else { return }
            buffer.append(contentsOf: chunk[0..<n])
            if headerEnd == nil, let end = Self.find([13, 10, 13, 10], in: buffer) {
                headerEnd = end + 4
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                contentLength = Self.headers(head)["content-length"].flatMap { Int($0) } ?? 0
            }
        }
        guard let end = headerEnd else { return }
        let head = String(decoding: buffer[..<(end - 4)], as: UTF8.self)
        let requestLine = head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
        let parts = requestLine.split(separator: " ")
        let request = Request(method: parts.first.map(String.init) ?? "", target: parts.count > 1 ? String(parts[1]) : "",
                              headers: Self.headers(head), body: Array(buffer[end..<(end + contentLength)]), receivedAt: wallMillis())
        let status = state.withLock { s -> Int in
            s.requests.append(request)
            return s.script.isEmpty ? 200 : s.script.removeFirst()
        }
        if status == 0 {
            let until = wallMillis() + 30_000
            while !state.withLock({ $0.stopped }) && wallMillis() < until { usleep(20_000) }
            return
        }
        let answer = Array("HTTP/1.1 \(status) Scripted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".utf8)
        if let session {
            _ = answer.withUnsafeBytes { SSL_write(session, $0.baseAddress, Int32($0.count)) }
        } else {
            _ = answer.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    private static func headers(_ head: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            out[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}

/// The receiver's server context. `@unchecked Sendable`: after init the SSL_CTX only makes
/// sessions, which OpenSSL makes thread-safe.
private final class ServerTLS: @unchecked Sendable {
    let ctx: OpaquePointer
    init(cert: String, key: String) throws {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw TestError("SSL_CTX_new failed") }
        self.ctx = ctx
        guard SSL_CTX_use_certificate_chain_file(ctx, cert) == 1, SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else {
            throw TestError("cannot load the receiver's certificate")
        }
    }
    deinit { SSL_CTX_free(ctx) }
}
