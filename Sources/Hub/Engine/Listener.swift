import Core
import Glibc
import Synchronization

// One listening address (public or bridge): what it serves and how. Each loop binds its own
// SO_REUSEPORT socket to the same address; the kernel spreads new connections among them.
final class Listener: Sendable {
    let name: String
    let host: String
    let service: HTTPService
    /// The TLS configuration new connections get; SIGHUP swaps it (connections already open
    /// keep the context they started with: OpenSSL counts its references).
    private let tlsContext: Locked<TLSContext?>
    var tls: TLSContext? { tlsContext.withLock { $0 } }
    /// The Strict-Transport-Security value every HTTP answer on a TLS connection of this
    /// listener carries (nil: none; the bridge and a plain-HTTP public listener have none).
    let strictTransportSecurity: String?
    let limits: EngineLimits
    /// The options its accepted connections run with, set on each loop's listening socket.
    let acceptedSocketOptions: AcceptedSocketOptions
    /// The configured port; `port` below is the one actually bound (they differ for port 0).
    let requestedPort: Int
    let port: Int
    /// The socket bound at init for the first loop, until that loop takes it.
    private let held: Locked<Int32?>

    /// Probes a configured port without SO_REUSEPORT first, so a port held by another process
    /// (even another hub) is reported as in use instead of silently shared.
    init(name: String, host: String, port: Int, service: HTTPService, tls: TLSContext?,
         strictTransportSecurity: String? = nil, limits: EngineLimits) throws {
        self.name = name
        self.host = host
        self.requestedPort = port
        self.service = service
        self.tlsContext = Locked(tls)
        self.strictTransportSecurity = tls == nil ? nil : strictTransportSecurity
        self.limits = limits
        self.acceptedSocketOptions = AcceptedSocketOptions(limits)
        // The first loop's socket is bound now and held until that loop takes it. A port the
        // kernel chose (port 0) must stay bound from the moment it is chosen: let go, the
        // kernel may hand it to the next port-0 listener (the bridge, another node), and both
        // would then share it through SO_REUSEPORT. A port held by a listening socket is never
        // chosen again while it is held.
        if port != 0 { try Self.probe(host: host, port: port) }
        let first = try Socket.listen(host: host, port: port, reusePort: true, backlog: limits.listenBacklog)
        self.port = Socket.boundPort(first)
        self.held = Locked(first)
    }

    /// Closes the held socket if no loop took it (a server that failed before its loops ran).
    deinit {
        if let fd = held.withLock({ $0 }) { close(fd) }
    }

    /// Binds the address alone (no SO_REUSEPORT) and lets it go: throws when another process
    /// holds it, or the address is not one to listen on.
    static func probe(host: String, port: Int) throws {
        close(try Socket.listen(host: host, port: port, reusePort: false, backlog: EngineLimits().listenBacklog))
    }

    /// From now on, new connections use `context`.
    func replaceTLS(_ context: TLSContext) {
        tlsContext.withLock { $0 = context }
    }

    /// A socket for one loop, with the options its accepted connections inherit.
    func makeSocket() throws -> Int32 {
        let taken = held.withLock { fd -> Int32? in defer { fd = nil }; return fd }
        let fd = try taken ?? Socket.listen(host: host, port: port, reusePort: true, backlog: limits.listenBacklog)
        acceptedSocketOptions.apply(to: fd)
        return fd
    }
}
