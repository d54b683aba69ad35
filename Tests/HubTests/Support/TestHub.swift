import Foundation
import Synchronization
import Core
@testable import Persistence
import Protocol
import XCTest
@testable import Hub

// An in-process hub on ephemeral ports (127.0.0.1, port 0), stopped at the end of the test.
// MONTROSE_TEST_TOPOLOGY chooses what it runs on (TestTopology): with several nodes, `port` and
// `bridgePort` go round the nodes, so the clients of one test are spread over all of them.
final class TestHub {
    /// Every node; `server` is the first.
    let servers: [HubServer]
    var server: HubServer { servers[0] }
    let topology: TestTopology
    /// The PostgreSQL schema every node uses (nil on SQLite); dropped by `stop()`.
    let database: TestDatabase?
    private let turn = Atomic<Int>(0)
    /// The next node's public port (round robin).
    var port: Int { nextServer().publicListener.port }
    var bridgePort: Int { nextServer().bridgeListener.port }

    private func nextServer() -> HubServer {
        servers[turn.add(1, ordering: .relaxed).oldValue % servers.count]
    }

    init(loops: Int = 2, echoPath: String? = "/echo", maxMessage: Int = 1 << 20,
         tls: (cert: String, key: String)? = nil, limits: EngineLimits = EngineLimits(),
         chatLimits: ChatLimits = ChatLimits(), database reused: TestDatabase? = nil, topology: TestTopology? = nil,
         configure: (inout Configuration) -> Void = { _ in }) throws {
        var c = Configuration()
        c.host = "127.0.0.1"
        c.port = 0
        c.bridgeHost = "127.0.0.1"
        c.bridgePort = 0
        c.loops = loops
        c.echoPath = echoPath
        c.maxMessage = maxMessage
        c.tlsCert = tls?.cert
        c.tlsKey = tls?.key
        c.dataDir = TestDirectory.make("hub-test")
        c.jwtSecret = TestHub.secret
        c.bridgeKeys = [TestHub.bridgeKey, TestHub.rotatedBridgeKey]
        c.mailPollMs = 50
        c.dev = false // no demo data unless a test asks for it
        configure(&c)
        let topology = topology ?? TestTopology.current
        self.topology = topology
        // A restart in a test reuses the stopped hub's database (its data folder, on SQLite).
        let schema = try reused ?? (topology.usesPostgres ? TestDatabase() : nil)
        database = schema
        var started: [HubServer] = []
        do {
            for node in 0..<topology.nodes {
                var n = c
                if let schema {
                    n.store = .postgres(url: schema.url)
                    n.nodeID = "node\(node)"
                    n.clusterName = schema.name
                    if n.brokers.isEmpty && topology.nodes > 1 { n.brokers = try TestTopology.redis() }
                }
                let server = try HubServer(configuration: n, limits: limits, chatLimits: chatLimits)
                server.start()
                started.append(server)
            }
        } catch {
            for s in started { s.shutdown(deadlineMs: 2_000) }
            schema?.drop()
            throw error
        }
        servers = started
        // Several nodes are ready when every node hears the others: its bus and its cluster
        // state connected (until then its /healthz says degraded, rightly). A node meant to
        // start without Redis (one node given a broker that is not there) is not waited for.
        guard topology.nodes > 1 else { return }
        let connected = eventually(10) {
            started.allSatisfy { s in
                (s.redisBroker?.status().allSatisfy(\.up) ?? true) && (s.cluster?.counters.redisUp.load(ordering: .relaxed) ?? true)
            }
        }
        guard connected else {
            stop()
            throw TestError("the test cluster's nodes did not connect to Redis within 10 s")
        }
    }

    /// Stops every node; `keepingStore`: leaves the PostgreSQL schema for a restarted hub
    /// (`TestHub(database: old.database)`), which drops it in turn.
    func stop(keepingStore: Bool = false) {
        for s in servers { s.shutdown(deadlineMs: 2_000) }
        if !keepingStore { database?.drop() }
    }

    static let secret = "test-secret-0123456789abcdef"
    static let bridgeKey = "bridge-key-0123456789abcdef"
    /// A second valid key, as during a rotation.
    static let rotatedBridgeKey = "bridge-key-rotated-0123456789"

    /// A client of this hub's bridge listener.
    var bridge: BridgeClient { BridgeClient(port: bridgePort) }

    /// A signed token for a user (expiring in an hour unless told otherwise).
    static func token(_ sub: String, _ role: Role, name: String? = nil, services: [String]? = nil,
                      expiresIn: Int64 = 3600) -> String {
        JWTSigner(secret: Array(secret.utf8)).sign(TokenClaims(sub: sub, role: role, name: name ?? sub.capitalized,
                                                               exp: Int64(Date().timeIntervalSince1970) + expiresIn, services: services))
    }

    /// Seeds an assignment the way the bridge will: in the store and in the live directory.
    func assign(_ agent: String, to client: String, for service: String) throws {
        let key = ConversationKey(service: service, clientId: client)
        let r = waitForStore { server.store.setAssignment(Assignment(conversation: key, agentId: agent), now: 1, completion: $0) }
        _ = try r.get()
        for s in servers { s.chat.directory.setAgent(agent, for: key) }
    }
}

/// The montrose-hub executable next to the test bundle, run as a subprocess.
final class HubProcess {
    let process = Process()
    private let stdoutPipe = Pipe()
    let stderrPipe = Pipe()
    private(set) var outputLines: [String] = []
    /// stderr, drained continuously by a thread: a hub that logs a lot must never block on a
    /// full pipe because the test is not reading it.
    private final class Sink: Sendable { let bytes = Locked<[UInt8]>([]) }
    private let stderrBuffer = Sink()
    private let stderrDone = DispatchSemaphore(value: 0)
    private var partialLine = ""
    private var linesSeen = 0

    /// `MONTROSE_TEST_HUB=path` runs another build of the hub (the release build, say).
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["MONTROSE_TEST_HUB"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("montrose-hub")
    }

    /// `drainStderr: false` leaves standard error unread: the pipe fills after 64 KiB.
    init(_ args: [String], environment: [String: String] = [:], drainStderr: Bool = true,
         currentDirectory: String? = nil) throws {
        process.executableURL = Self.executable
        process.arguments = args
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MONTROSE_") }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        try process.run()
        guard drainStderr else { stderrDone.signal(); return }
        let fd = stderrPipe.fileHandleForReading.fileDescriptor
        let buffer = stderrBuffer, done = stderrDone
        Thread.detachNewThread {
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { break }
                buffer.bytes.withLock { $0.append(contentsOf: chunk[0..<n]) }
            }
            done.signal()
        }
    }

    /// Reads stdout until a line contains `marker` (or the process exits / time runs out).
    func waitForLine(containing marker: String, timeout: TimeInterval = 15) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        // Lines already read but not yet looked at by a previous wait.
        while linesSeen < outputLines.count {
            let line = outputLines[linesSeen]
            linesSeen += 1
            if line.contains(marker) { return line }
        }
        let fd = stdoutPipe.fileHandleForReading.fileDescriptor
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 100) > 0 {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { return nil }
                partialLine += String(decoding: chunk[0..<n], as: UTF8.self)
                while let nl = partialLine.firstIndex(of: "\n") {
                    let line = String(partialLine[..<nl])
                    partialLine.removeSubrange(...nl)
                    outputLines.append(line)
                }
                while linesSeen < outputLines.count {
                    let line = outputLines[linesSeen]
                    linesSeen += 1
                    if line.contains(marker) { return line }
                }
            }
        }
        return nil
    }

    /// Port from a "… listening on scheme://host:PORT …" line.
    static func port(in line: String) -> Int? {
        guard let r = line.range(of: "://") else { return nil }
        let after = line[r.upperBound...]
        guard let colon = after.firstIndex(of: ":") else { return nil }
        return Int(after[after.index(after: colon)...].prefix { $0.isNumber })
    }

    /// Everything the process wrote to stderr; waits for it to exit (kills it after 10 s).
    var standardError: String {
        _ = waitForExit()
        _ = stderrDone.wait(timeout: .now() + 5)
        stderrDone.signal() // a second call must not wait again
        return String(decoding: stderrBuffer.bytes.withLock { $0 }, as: UTF8.self)
    }

    /// What the process has written to stderr so far, without waiting for it to exit.
    var standardErrorSoFar: String { String(decoding: stderrBuffer.bytes.withLock { $0 }, as: UTF8.self) }

    func signal(_ s: Int32) { kill(process.processIdentifier, s) }

    /// Waits for exit; returns the status, or nil (and kills it) on timeout.
    func waitForExit(timeout: TimeInterval = 10) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A throwaway self-signed certificate (EC P-256, or RSA 2048 with `rsa`) made with the openssl command.
enum TestCertificate {
    static func make(in dir: String = TestDirectory.make("hub-cert"),
                     commonName: String = "localhost", rsa: Bool = false) throws -> (cert: String, key: String) {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cert = dir + "/cert.pem", key = dir + "/key.pem"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let keyType = rsa ? ["rsa:2048"] : ["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        p.arguments = ["openssl", "req", "-x509", "-newkey"] + keyType +
                      ["-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=\(commonName)"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw TestError("openssl req failed") }
        return (cert, key)
    }
}
