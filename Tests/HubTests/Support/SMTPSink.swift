import Core
import Foundation
import Glibc
import Synchronization

// An in-test SMTP server on 127.0.0.1: a background thread accepts, and each connection gets
// its own thread speaking enough SMTP for the client (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
// QUIT). Accepted mails are recorded; failures are scripted per delivery attempt.
//
// Sendable without @unchecked: the only mutable state is inside a Locked (a pthread mutex); each fd is owned by
// the one thread that polls it and is closed by that thread when it sees `stopped`.
final class SMTPSink: Sendable {
    struct Received: Sendable, Equatable {
        var from: String
        var to: [String]
        /// The DATA text as received, de-dot-stuffed, without the terminating ".".
        var data: String
    }

    private struct State {
        var mails: [Received] = []
        var attempts = 0
        var connections = 0
        var hellos: [String] = []
        var failRemaining = 0
        var failCode = 451
        var rejectAllCode: Int?
        var ehloRejectCode: Int?
        var stopped = false
        var liveThreads = 0
    }

    let port: Int
    private let listenFD: Int32
    private let state = Locked(State())

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SMTPSinkError("socket: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { close(fd); throw SMTPSinkError("bind/listen: errno \(errno)") }
        listenFD = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        state.withLock { $0.liveThreads = 1 }
        Thread { [self] in acceptLoop() }.start()
    }

    // MARK: scripting and inspection

    /// The next `n` delivery attempts (MAIL FROM transactions) get `code` at RCPT TO.
    func failNext(_ n: Int, code: Int) { state.withLock { $0.failRemaining = n; $0.failCode = code } }
    /// Every RCPT TO gets `code` from now on.
    func rejectAll(code: Int) { state.withLock { $0.rejectAllCode = code } }
    /// Accepts mail again after `rejectAll`.
    func acceptAll() { state.withLock { $0.rejectAllCode = nil } }
    /// EHLO is answered with `code` (the client should fall back to HELO).
    func rejectEHLO(code: Int) { state.withLock { $0.ehloRejectCode = code } }

    /// MAIL FROM commands seen.
    var attempts: Int { state.withLock { $0.attempts } }
    /// Connections accepted.
    var connections: Int { state.withLock { $0.connections } }
    /// EHLO/HELO command lines, in order.
    var hellos: [String] { state.withLock { $0.hellos } }
    var mails: [Received] { state.withLock { $0.mails } }

    func waitForMail(count: Int, timeout: TimeInterval) -> [Received] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let mails = state.withLock { $0.mails }
            if mails.count >= count || Date() >= deadline { return mails }
            usleep(5_000)
        }
    }

    /// Stops accepting, ends every connection and waits (bounded) for the threads to close
    /// their sockets.
    func stop() {
        state.withLock { $0.stopped = true }
        let deadline = Date().addingTimeInterval(2)
        while state.withLock({ $0.liveThreads }) > 0 && Date() < deadline { usleep(2_000) }
    }

    // MARK: threads

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func acceptLoop() {
        defer {
            close(listenFD)
            state.withLock { $0.liveThreads -= 1 }
        }
        while !stopped {
            var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 20) > 0 else { continue }
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { continue }
            state.withLock { $0.liveThreads += 1; $0.connections += 1 }
            Thread { [self] in
                serve(fd)
                close(fd)
                state.withLock { $0.liveThreads -= 1 }
            }.start()
        }
    }

    private struct Transaction {
        var from: String?
        var to: [String] = []
        var rcptCode: Int?
    }

    private func serve(_ fd: Int32) {
        var reader = LineReader(fd: fd)
        var tx = Transaction()
        let isStopped = { [self] in stopped }
        guard write(fd, "220 sink.test ESMTP ready\r\n") else { return }
        while let line = reader.readLine(stopped: isStopped) {
            let upper = line.uppercased()
            let reply: String
            if upper.hasPrefix("EHLO") {
                let code = state.withLock { $0.hellos.append(line); return $0.ehloRejectCode }
                reply = code.map { "\($0) EHLO not here\r\n" }
                    ?? "250-sink.test greets you\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
            } else if upper.hasPrefix("HELO") {
                state.withLock { $0.hellos.append(line) }
                reply = "250 sink.test\r\n"
            } else if upper.hasPrefix("MAIL FROM:") {
                let code: Int? = state.withLock {
                    $0.attempts += 1
                    if let all = $0.rejectAllCode { return all }
                    if $0.failRemaining > 0 { $0.failRemaining -= 1; return $0.failCode }
                    return nil
                }
                tx = Transaction(from: Self.path(line.dropFirst(10)), to: [], rcptCode: code)
                reply = "250 sender ok\r\n"
            } else if upper.hasPrefix("RCPT TO:") {
                if tx.from == nil {
                    reply = "503 need MAIL first\r\n"
                } else if let code = tx.rcptCode {
                    reply = "\(code) recipient refused (scripted)\r\n"
                } else {
                    tx.to.append(Self.path(line.dropFirst(8)))
                    reply = "250 recipient ok\r\n"
                }
            } else if upper == "DATA" {
                guard let from = tx.from, !tx.to.isEmpty else {
                    guard write(fd, "503 no valid recipients\r\n") else { return }
                    continue
                }
                guard write(fd, "354 end with <CRLF>.<CRLF>\r\n") else { return }
                var data = ""
                var terminated = false
                while let l = reader.readLine(stopped: isStopped) {
                    if l == "." { terminated = true; break }
                    data += (l.hasPrefix(".") ? String(l.dropFirst()) : l) + "\r\n"
                }
                guard terminated else { return }
                state.withLock { $0.mails.append(Received(from: from, to: tx.to, data: data)) }
                tx = Transaction()
                reply = "250 queued\r\n"
            } else if upper == "RSET" {
                tx = Transaction()
                reply = "250 reset\r\n"
            } else if upper.hasPrefix("NOOP") {
                reply = "250 ok\r\n"
            } else if upper == "QUIT" {
                _ = write(fd, "221 bye\r\n")
                return
            } else {
                reply = "500 unknown command\r\n"
            }
            guard write(fd, reply) else { return }
        }
    }

    /// "<a@b> SIZE=10" → "a@b".
    private static func path(_ s: Substring) -> String {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("<"), let end = t.firstIndex(of: ">") else { return t }
        return String(t[t.index(after: t.startIndex)..<end])
    }

    private func write(_ fd: Int32, _ s: String) -> Bool {
        let bytes = Array(s.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress.map { $0 + off }, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }
}

struct SMTPSinkError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// CRLF (or LF) lines from a blocking fd, polled in short slices so a stop is noticed.
private struct LineReader {
    let fd: Int32
    var buffer: [UInt8] = []
    static let maxBuffer = 1 << 20

    mutating func readLine(stopped: () -> Bool) -> String? {
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while true {
            if let lf = buffer.firstIndex(of: 0x0A) {
                var end = lf
                if end > 0, buffer[end - 1] == 0x0D { end -= 1 }
                let line = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(lf + 1)
                return line
            }
            if stopped() || buffer.count > Self.maxBuffer { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 20) > 0 else { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 {
                if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                return nil
            }
            buffer += chunk[0..<n]
        }
    }
}
