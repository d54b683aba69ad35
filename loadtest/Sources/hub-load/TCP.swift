import CLinux
import Glibc

// The socket calls the generator makes: a non-blocking loopback connect from a local port the
// generator picks itself.
enum TCP {
    /// Local ports handed out by `bindLocalPort`: below the kernel's usual ephemeral range
    /// (32768–60999), where the hub's own `--port 0` listeners land.
    static let localPorts = 10_000...32_767
    /// The next port to try; starts at a random place so back-to-back runs use other ports.
    /// The generator is single-threaded.
    nonisolated(unsafe) private static var nextLocalPort = Int.random(in: localPorts)

    /// Starts a non-blocking connect to an IPv4 address (already checked to be loopback).
    /// Returns the socket, or a negative errno. `receiveBuffer` (SO_RCVBUF, set before the
    /// connect so the window offered from the start is small) is for readers meant to stall.
    static func connect(host: String, port: Int, receiveBuffer: Int32? = nil) -> Int32 {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, host, &a.sin_addr)
        var e: Int32 = 0
        // EADDRNOTAVAIL: the chosen local port already has a connection to this very address
        // (a recent run's TIME_WAIT); another port will do.
        for _ in 0..<8 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return -montrose_errno() }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if var size = receiveBuffer {
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            bindLocalPort(fd)
            let rc = withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            e = rc == 0 ? 0 : montrose_errno()
            if rc == 0 || e == EINPROGRESS { return fd }
            close(fd)
            if e != EADDRNOTAVAIL { break }
        }
        return -e
    }

    /// Binds `fd` to 127.0.0.1 and the next free port of `localPorts`; after a few ports in use
    /// it gives up and the kernel picks one at connect, as usual. SO_REUSEADDR lets a port
    /// still in TIME_WAIT from an earlier run be taken again.
    /// Why: the kernel's own search for a free ephemeral port slows down sharply once about
    /// half of its range is in use (measured here: 19,000 connects cost 4.2 s of kernel time
    /// that way, 0.6 s with the ports given), which would cap connects/s at the generator.
    private static func bindLocalPort(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        for _ in 0..<16 {
            let port = nextLocalPort
            nextLocalPort = port == localPorts.upperBound ? localPorts.lowerBound : port + 1
            local.sin_port = UInt16(port).bigEndian
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc == 0 { return }
        }
    }

    /// The outcome of a non-blocking connect once the socket is writable: 0 or an errno.
    static func connectError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        return err
    }
}
