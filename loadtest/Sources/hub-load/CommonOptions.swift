// The flags the connections, fanout, echo and broadcast scenarios share: where the hub is,
// where its secrets are, how connections are opened and how long a phase may take.
struct CommonOptions {
    var url = LoopbackURL(host: "127.0.0.1", port: 0, path: "/ws")
    /// Every `--url`'s port, in order (several hub nodes on one host; the first is `url`).
    var ports: [Int] = []
    var bridge: LoopbackURL?
    var dataDir: String?
    var jwtSecret: String?
    var bridgeKey: String?
    /// Connections opened but not yet ready (connect, upgrade, auth, subscribe) at any time.
    var concurrency = 256
    /// Bound of each waiting phase (connecting; a broadcast round) in seconds.
    var timeout = 60.0

    static let usage = """
      common: --url ws://127.0.0.1:PORT/ws (required; repeat it for several nodes: connections go round them)  --data DIR | --jwt-secret S [--bridge-key K]
              --concurrency N (handshakes in flight, default 256)  --timeout S (bound of each phase, default 60)
    """

    /// Reads a scenario's flags: the common ones here, its own through `own`, which returns
    /// false for a flag it does not know (an error, like -h, which shows the usage).
    static func parse(_ args: ArraySlice<String>, usage: String,
                      own: (String, inout Flags) throws(UsageError) -> Bool) throws(UsageError) -> CommonOptions {
        var common = CommonOptions()
        var f = Flags(args)
        while let flag = f.next() {
            if try common.take(flag, &f) { continue }
            if flag == "-h" || flag == "--help" { throw UsageError(message: usage + "\n" + Self.usage) }
            guard try own(flag, &f) else { throw UsageError(message: "unknown flag \(flag)") }
        }
        try common.check()
        return common
    }

    /// Takes `flag` and its value when it is one of the common flags; false otherwise.
    mutating func take(_ flag: String, _ f: inout Flags) throws(UsageError) -> Bool {
        switch flag {
        case "--url":
            var next = try LoopbackURL.parse(try f.value(flag), scheme: "ws", flag: flag)
            if next.path.isEmpty { next.path = "/ws" }
            if ports.isEmpty {
                url = next
            } else if next.host != url.host || next.path != url.path {
                // Several nodes of one hub on this machine: only the port differs.
                throw UsageError(message: "--url: every node must have the same host and path as the first")
            }
            ports.append(next.port)
        case "--bridge": bridge = try LoopbackURL.parse(try f.value(flag), scheme: "http", flag: flag)
        case "--data": dataDir = try f.value(flag)
        case "--jwt-secret": jwtSecret = try f.value(flag)
        case "--bridge-key": bridgeKey = try f.value(flag)
        case "--concurrency": concurrency = try f.int(flag, 1...20_000)
        case "--timeout": timeout = try f.seconds(flag, 0.1...3600)
        default: return false
        }
        return true
    }

    /// Checks what every scenario needs once all flags are read.
    func check() throws(UsageError) {
        guard url.port > 0 else { throw UsageError(message: "--url is required") }
    }

    func secret() throws(UsageError) -> String {
        if let jwtSecret { return jwtSecret }
        return try Tokens.devSecret("jwt_secret", dataDir: dataDir, flag: "--jwt-secret")
    }

    func bridgeSecret() throws(UsageError) -> String {
        if let bridgeKey { return bridgeKey }
        return try Tokens.devSecret("bridge_key", dataDir: dataDir, flag: "--bridge-key")
    }
}
