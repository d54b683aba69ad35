import Foundation
import Glibc
import Synchronization

// A TCP proxy on 127.0.0.1 for fault tests: passes bytes both ways until told to blackhole,
// then reads and throws away everything in both directions (the connections stay open and
// silent, as behind a dead route). Threads poll with a 50 ms timeout, so `stop` ends them.
final class BlackholeProxy: @unchecked Sendable {
    let port: Int
    private let listenFD: Int32
    private let targetPort: Int
    private let running = Atomic<Bool>(true)
    private let silent = Atomic<Bool>(false)

    init(to targetPort: Int) throws {
        self.targetPort = targetPort
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listenFD = fd
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = 0
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        guard ok else { throw POSIXError(.EADDRNOTAVAIL) }
        port = Int(UInt16(bigEndian: a.sin_port))
        spawn { [self] in acceptLoop() }
    }

    var blackhole: Bool {
        get { silent.load(ordering: .sequentiallyConsistent) }
        set { silent.store(newValue, ordering: .sequentiallyConsistent) }
    }

    func stop() {
        running.store(false, ordering: .sequentiallyConsistent)
        Thread.sleep(forTimeInterval: 0.1)
        close(listenFD)
    }

    private func spawn(_ body: @escaping @Sendable () -> Void) {
        Thread(block: body).start()
    }

    private func acceptLoop() {
        while running.load(ordering: .sequentiallyConsistent) {
            var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let client = accept(listenFD, nil, nil)
            guard client >= 0 else { continue }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = UInt16(targetPort).bigEndian
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard connected else {
                close(client)
                close(upstream)
                continue
            }
            spawn { [self] in forward(client, upstream) }
        }
    }

    private func forward(_ a: Int32, _ b: Int32) {
        defer { close(a); close(b) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        while running.load(ordering: .sequentiallyConsistent) {
            guard poll(&fds, 2, 50) > 0 else { continue }
            for i in 0..<2 where fds[i].revents != 0 {
                let n = read(fds[i].fd, &buffer, buffer.count)
                if n <= 0 { return }
                if blackhole { continue }
                var sent = 0
                while sent < n {
                    let w = buffer.withUnsafeBytes { write(fds[1 - i].fd, $0.baseAddress! + sent, n - sent) }
                    if w <= 0 { return }
                    sent += w
                }
            }
        }
    }
}
