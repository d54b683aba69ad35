import Foundation
import Glibc
import Core

// A TCP proxy on 127.0.0.1 for fault tests, between one hub node and an engine (Redis,
// PostgreSQL). Its mode applies at once to every connection, open or new:
// - `pass`: bytes go both ways as they come;
// - `delay(ms)`: each chunk is forwarded `ms` later (order kept);
// - `blackhole`: nothing is read or forwarded; connections stay open and silent, as behind a
//   dead route. Bytes are never thrown away: when the mode goes back to `pass`, what waited in
//   the kernel's buffers flows on, as TCP would deliver it once the route is back;
// - `reset`: every open connection is reset (RST, both sides), and every new one is reset as
//   soon as it is accepted.
// One thread accepts, one thread per connection forwards; both poll with a short timeout, so a
// mode change is seen within ~20 ms and `stop` ends them within a deadline.
final class FaultProxy: @unchecked Sendable {
    enum Mode: Equatable, Sendable {
        case pass
        case delay(ms: Int)
        case blackhole
        case reset
    }

    let port: Int
    private let targetPort: Int
    private let listenFD: Int32
    private let state = Locked<(mode: Mode, running: Bool)>((.pass, true))
    /// When each connection was accepted (a node reconnecting shows here).
    private let acceptedAt = Locked<[Date]>([])
    /// Connections silenced for good (`silenceOpenConnections`), by number; and the next number.
    private let silenced = Locked<(ids: Set<Int>, next: Int)>(([], 0))
    private let threads = DispatchGroup()

    init(to targetPort: Int) throws {
        self.targetPort = targetPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listenFD = fd
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var a = Self.loopback(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 64) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else {
            close(fd)
            throw TestError("fault proxy: cannot listen on 127.0.0.1 (errno \(errno))")
        }
        port = Int(UInt16(bigEndian: a.sin_port))
        spawn { [self] in acceptLoop() }
    }

    var mode: Mode {
        get { state.withLock { $0.mode } }
        set { state.withLock { $0.mode = newValue } }
    }

    /// Makes every connection open now silent for the rest of its life, as `blackhole` does,
    /// while new connections follow the mode: a route lost for the peers it carried.
    func silenceOpenConnections() {
        silenced.withLock { s in s.ids.formUnion(0..<s.next) }
    }

    /// Connections accepted at or after `date`.
    func accepted(since date: Date) -> [Date] { acceptedAt.withLock { $0.filter { $0 >= date } } }

    /// Ends every thread (at most ~2 s) and closes the listener.
    func stop() {
        state.withLock { $0.running = false }
        _ = threads.wait(timeout: .now() + 2)
        close(listenFD)
    }

    private var running: Bool { state.withLock { $0.running } }

    private func spawn(_ body: @escaping @Sendable () -> Void) {
        threads.enter()
        let group = threads
        Thread {
            body()
            group.leave()
        }.start()
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port).bigEndian
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return a
    }

    /// Closes with an RST instead of a FIN (SO_LINGER with a zero timeout).
    private static func reset(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        close(fd)
    }

    private func acceptLoop() {
        while running {
            var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 20) > 0 else { continue }
            let client = accept(listenFD, nil, nil)
            guard client >= 0 else { continue }
            acceptedAt.withLock { $0.append(Date()) }
            if mode == .reset {
                Self.reset(client)
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var a = Self.loopback(port: targetPort)
            let connected = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard connected else {
                Self.reset(client)
                close(upstream)
                continue
            }
            for fd in [client, upstream] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
            let number = silenced.withLock { s -> Int in
                defer { s.next += 1 }
                return s.next
            }
            spawn { [self] in forward(client, upstream, number: number) }
        }
    }

    /// One direction's bytes read but not yet written, each chunk with the time it may leave.
    private struct Lane {
        var chunks: [(due: Date, bytes: [UInt8])] = []
        var queued = 0
        var eof = false
    }

    private func forward(_ a: Int32, _ b: Int32, number: Int) {
        let fds = [a, b]
        var lanes = [Lane(), Lane()] // lanes[i]: read from fds[i], written to fds[1 - i]
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var closed = false
        defer { if !closed { close(a); close(b) } }
        while running {
            let mode = self.mode
            if mode == .reset {
                Self.reset(a)
                Self.reset(b)
                closed = true
                return
            }
            if mode == .blackhole || silenced.withLock({ $0.ids.contains(number) }) {
                usleep(20_000)
                continue
            }
            let delay = if case .delay(let ms) = mode { Double(ms) / 1000 } else { 0.0 }
            // Write what is due.
            for i in 0..<2 {
                while let first = lanes[i].chunks.first, first.due <= Date() {
                    let n = first.bytes.withUnsafeBytes { send(fds[1 - i], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
                    if n <= 0 { return }
                    lanes[i].queued -= n
                    if n == first.bytes.count { lanes[i].chunks.removeFirst() } else { lanes[i].chunks[0].bytes.removeFirst(n) }
                }
                if lanes[i].eof && lanes[i].chunks.isEmpty { return } // a side closed and all it sent is through
            }
            var polls = (0..<2).map { i -> pollfd in
                var events: Int16 = 0
                if !lanes[i].eof && lanes[i].queued < 4 << 20 { events |= Int16(POLLIN) }
                if lanes[1 - i].chunks.first.map({ $0.due <= Date() }) == true { events |= Int16(POLLOUT) }
                return pollfd(fd: fds[i], events: events, revents: 0)
            }
            guard poll(&polls, 2, 10) > 0 else { continue }
            for i in 0..<2 where polls[i].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 && !lanes[i].eof {
                let n = read(fds[i], &buffer, buffer.count)
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { continue }
                if n <= 0 {
                    lanes[i].eof = true
                    continue
                }
                lanes[i].chunks.append((Date().addingTimeInterval(delay), Array(buffer[0..<n])))
                lanes[i].queued += n
            }
        }
    }
}
