import CLinux
import Glibc

// Thin wrappers over the socket calls the loops make. Errors carry errno and a reason.
struct SocketError: Error, CustomStringConvertible {
    let what: String
    let errno: Int32
    var description: String { "\(what): \(String(cString: strerror(errno)!))" }
}

enum Socket {
    /// A non-blocking listening socket with SO_REUSEADDR and SO_REUSEPORT, so every loop can
    /// bind its own socket to the same address and the kernel spreads connections among them.
    static func listen(host: String, port: Int, reusePort: Bool, backlog: Int32) throws -> Int32 {
        var storage = sockaddr_storage()
        let length: socklen_t
        let family: Int32
        if host.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = UInt16(port).bigEndian
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else {
                throw SocketError(what: "invalid IPv6 address \(host)", errno: EINVAL)
            }
            withUnsafeBytes(of: a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            family = AF_INET6
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = UInt16(port).bigEndian
            let name = host == "localhost" ? "127.0.0.1" : host
            guard inet_pton(AF_INET, name, &a.sin_addr) == 1 else {
                throw SocketError(what: "invalid IPv4 address \(host)", errno: EINVAL)
            }
            withUnsafeBytes(of: a) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            family = AF_INET
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(what: "socket", errno: montrose_errno()) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let e = montrose_errno()
            close(fd)
            throw SocketError(what: "bind \(host):\(port)", errno: e)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = montrose_errno()
            close(fd)
            throw SocketError(what: "listen \(host):\(port)", errno: e)
        }
        return fd
    }

    /// A non-blocking, close-on-exec TCP socket connecting to an IPv4 literal (or `localhost`):
    /// `configure` sets its options before the connect. `inProgress` when the connect goes on
    /// in the background (the socket turns writable when it ends; `pendingError` says how).
    static func connect(ipv4 host: String, port: Int, configure: (Int32) -> Void) -> Result<(fd: Int32, inProgress: Bool), SocketError> {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = UInt16(port).bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &a.sin_addr) == 1 else {
            return .failure(SocketError(what: "invalid IPv4 address \(host)", errno: EINVAL))
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(SocketError(what: "socket", errno: montrose_errno())) }
        configure(fd)
        let rc = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc == 0 { return .success((fd, false)) }
        let e = montrose_errno()
        if e == EINPROGRESS { return .success((fd, true)) }
        close(fd)
        return .failure(SocketError(what: "connect \(host):\(port)", errno: e))
    }

    /// An int socket option; false when the kernel refused it.
    @discardableResult
    static func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32) -> Bool {
        var v = value
        return setsockopt(fd, level, option, &v, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    /// An int socket option's value; nil when the kernel refused to tell.
    static func option(_ fd: Int32, _ level: Int32, _ option: Int32) -> Int32? {
        var v: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, level, option, &v, &len) == 0 ? v : nil
    }

    /// SO_ERROR: why a background connect failed or a socket broke (0: no error); reading clears it.
    static func pendingError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 else { return montrose_errno() }
        return err
    }

    /// Makes the coming close(2) a reset (SO_LINGER 0): the kernel frees the socket and the
    /// data it could not send at once, instead of keeping it as an orphan that probes a zero
    /// window for minutes.
    static func resetOnClose(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    /// Whether the socket takes more output now (POLLOUT; with TCP_NOTSENT_LOWAT, less than that
    /// much is unsent). Only the peer's reading changes this while nothing is written to it.
    static func acceptsOutput(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        return poll(&p, 1, 0) > 0 && p.revents & Int16(POLLOUT) != 0
    }

    /// Whether the kernel still holds bytes (or a FIN) for `fd` that the peer has not
    /// acknowledged: a close now would leave them to an orphan socket. True as well when the
    /// kernel cannot tell (the ioctl fails): a reset then errs against leaving an orphan.
    static func peerOwesAcknowledgement(_ fd: Int32) -> Bool {
        montrose_unacknowledged_bytes(fd) != 0
    }

    /// The port a socket is bound to (for port 0 in tests).
    static func boundPort(_ fd: Int32) -> Int {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        // sin_port and sin6_port both sit at offset 2, so one read serves either family.
        return withUnsafeBytes(of: storage) { Int(UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self))) }
    }

    /// Accepts one connection, non-blocking and close-on-exec; nil on EAGAIN.
    static func accept(_ listenFD: Int32) -> Result<(fd: Int32, peer: PeerAddress)?, SocketError> {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                montrose_accept4(listenFD, $0, &len, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            }
        }
        if fd < 0 {
            let e = montrose_errno()
            if e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED { return .success(nil) }
            return .failure(SocketError(what: "accept", errno: e))
        }
        return .success((fd, PeerAddress(storage)))
    }
}

/// The options every accepted connection runs with: no Nagle delay (a push goes out when it is
/// written), a fixed send buffer and an unsent low-water mark (see `EngineLimits`).
///
/// Linux copies a listening socket's options to the sockets it accepts, so they are set once on
/// the listening socket, not with three system calls per connection (3 % of a connect's CPU).
/// A loop checks the first socket it accepts (`copied(from:to:)`); where a kernel did not copy
/// them, every accepted socket gets them itself (`apply`).
struct AcceptedSocketOptions: Sendable {
    /// SO_SNDBUF; 0 leaves the kernel's autotuning.
    var sendBuffer: Int32
    /// TCP_NOTSENT_LOWAT; 0 leaves it unset.
    var unsentLowWater: Int32

    init(_ limits: EngineLimits) {
        sendBuffer = Int32(clamping: limits.socketSendBuffer)
        unsentLowWater = Int32(clamping: limits.socketUnsentLowWater)
    }

    func apply(to fd: Int32) {
        Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        if sendBuffer > 0 { Socket.setOption(fd, SOL_SOCKET, SO_SNDBUF, sendBuffer) }
        if unsentLowWater > 0 { Socket.setOption(fd, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT, unsentLowWater) }
    }

    /// Whether `accepted` runs with the options set on `listening` (the kernel reports SO_SNDBUF
    /// doubled, on both alike, so the two are compared with each other).
    func copied(from listening: Int32, to accepted: Int32) -> Bool {
        guard Socket.option(accepted, Int32(IPPROTO_TCP), TCP_NODELAY).map({ $0 != 0 }) == true else { return false }
        if sendBuffer > 0 {
            guard let mine = Socket.option(accepted, SOL_SOCKET, SO_SNDBUF),
                  mine == Socket.option(listening, SOL_SOCKET, SO_SNDBUF) else { return false }
        }
        if unsentLowWater > 0 {
            guard Socket.option(accepted, Int32(IPPROTO_TCP), TCP_NOTSENT_LOWAT) == unsentLowWater else { return false }
        }
        return true
    }
}

/// A Swift string from a NUL-terminated C buffer.
func cString(_ buf: [CChar]) -> String {
    let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
