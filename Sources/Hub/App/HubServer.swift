import CLinux
import Glibc
import Protocol

// Builds the engine from a Configuration: the loops, both listeners bound on every loop,
// and the services behind them. Start, stop, and the ports actually bound.
final class HubServer {
    let configuration: Configuration
    let counters = EngineCounters()
    private(set) var loops: [EventLoop] = []
    let publicListener: Listener
    let bridgeListener: Listener

    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    init(configuration c: Configuration, limits base: EngineLimits = EngineLimits()) throws(StartError) {
        configuration = c
        var limits = base
        limits.maxMessage = c.maxMessage
        limits.pingIntervalMs = Int64(c.pingIntervalSeconds) * 1000
        limits.maxConnections = c.maxConnections ?? HubServer.connectionCapacity()

        var tls: TLSContext?
        if let cert = c.tlsCert, let key = c.tlsKey {
            do { tls = try TLSContext(certificateFile: cert, keyFile: key) } catch { throw StartError(description: error.description) }
        }
        let handshake = HandshakeOptions(allowedOrigins: c.allowedOrigins, deflate: DeflatePolicy(enabled: c.deflate))
        var bridgeLimits = limits
        bridgeLimits.http.maxBodyBytes = 1 << 20
        do {
            publicListener = try Listener(name: "public", host: c.host, port: c.port,
                                          service: PublicService(echoPath: c.echoPath, handshake: handshake, counters: counters),
                                          tls: tls, limits: limits)
            bridgeListener = try Listener(name: "bridge", host: c.bridgeHost, port: c.bridgePort,
                                          service: BridgeService(counters: counters), tls: nil, limits: bridgeLimits)
            for i in 0..<c.loops {
                let loop = try EventLoop(index: i, counters: counters)
                try loop.add(publicListener)
                try loop.add(bridgeListener)
                loops.append(loop)
            }
        } catch {
            throw StartError(description: "\(error)")
        }
    }

    func start() {
        for loop in loops { loop.start() }
    }

    /// Closes every WebSocket with 1001, lets output drain, and returns when every loop has
    /// stopped (or the deadline forced them).
    func shutdown(deadlineMs: Int64 = 5_000) {
        for loop in loops {
            loop.execute { $0.beginShutdown(deadlineMs: deadlineMs) }
        }
        for loop in loops { loop.waitUntilFinished() }
    }

    /// How many connections the open-file limit leaves room for (after raising the soft limit
    /// to the hard one), keeping some descriptors for the database, logs and listeners.
    static func connectionCapacity() -> Int {
        var lim = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        return max(16, Int(lim.rlim_cur) - 64)
    }

    /// Raises the soft open-file limit to the hard one; returns the new soft limit.
    @discardableResult
    static func raiseFileLimit() -> Int {
        var lim = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
        }
        return Int(lim.rlim_cur)
    }
}
