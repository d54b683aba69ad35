import Notifications
import Persistence
import Foundation
import Protocol
import Glibc
import Core

// The hub's settings: every flag of the README's "Configuration", each also read from an environment
// variable (`--bridge-key` ↔ `MONTROSE_BRIDGE_KEY`; repeatable flags take a comma-separated
// list there). Command-line flags win over the environment.
struct Configuration: Sendable {
    /// The public listener's address. Development mode hands out admin tokens at /dev/token, so
    /// it listens on loopback unless --host is given; outside it, on every interface.
    var host = "0.0.0.0"
    var port = 8080
    var bridgeHost = "127.0.0.1"
    var bridgePort = 8081
    var dataDir = "./hub-data"
    var jwtSecret: String?
    var bridgeKeys: [String] = []
    var tlsCert: String?
    var tlsKey: String?
    /// `Strict-Transport-Security: max-age=` on the public listener's answers when it serves
    /// TLS (0: no header). Two years, Mozilla's value: a browser that has seen it goes straight
    /// to https for this host name, every port, for that long.
    var hstsMaxAge = Configuration.defaultHSTSMaxAge
    static let defaultHSTSMaxAge = 63_072_000
    var loops = max(1, ProcessInfo.processInfo.activeProcessorCount)
    var echoPath: String?
    var maxMessage = 1 << 20
    var smtp: String?
    var smtpFrom: String?
    /// `email: "fallback"` waits this long for the user to read or connect (docs/protocol.md "Mail": 10 minutes).
    var emailFallbackDelayMs: Int64 = 600_000
    /// First retry delay of a mail that failed for now (doubling up to an hour).
    var smtpRetryMs: Int64 = 30_000
    /// `--smtp` parsed (checked when the flag was read), with `--smtp-from` or its default.
    var smtpConfiguration: SMTPConfiguration? {
        smtp.flatMap { SMTPConfiguration.parse($0, from: smtpFrom ?? Self.defaultSMTPFrom) }
    }
    static let defaultSMTPFrom = "montrose-hub@localhost"
    /// `--webhook URL` (parsed: http:// only) and `--webhook-secret S`: both or neither.
    var webhook: WebhookEndpoint?
    var webhookSecret: String?
    /// `--webhook-ca FILE`: the CAs an https:// webhook's certificate must chain to (nil: the system's).
    var webhookCA: String?
    /// The deliverer's first retry delay and idle poll (not flags; tests shorten them).
    var webhookRetryBaseMs: Int64 = 1_000
    var webhookPollMs = 1_000
    /// How often the mailer looks for due mail (not a flag; tests shorten it).
    var mailPollMs = 1_000
    /// Chat limits given on the command line (nil: the defaults in ChatLimits).
    var opsPerSecond: Int?
    var opsBurst: Int?
    var maxConnectionsPerUser: Int?
    var maxUnauthenticated: Int?
    /// Largest bridge request body (413 above it).
    var bridgeMaxBody = 256 * 1024
    var dev = true
    var allowedOrigins: [String] = []
    /// `--attachment-origin`: where attachment URLs may point (the platform's file store);
    /// empty: messages carry no attachments. The console's image policy allows exactly these.
    var attachmentOrigins: [AttachmentOrigin] = []
    /// `--edit-window S`: how long after sending its sender may edit or delete a message.
    var editWindowMs = ContractLimits.defaultEditWindowMs
    /// `--search-index on|off`: keep the search index as messages are written (off: `search`
    /// answers `unavailable`, and a send writes nothing for it).
    var searchIndex = true
    /// `--durability full|normal` (SQLite): full fsyncs every group commit, so an ack survives
    /// a power cut; normal survives a process crash only.
    var durability = SQLiteStore.Durability.full
    private var durabilityGiven = false
    /// The attachment rules this configuration gives (plain http only in development mode).
    var attachmentPolicy: AttachmentPolicy { AttachmentPolicy(origins: Set(attachmentOrigins), allowsHTTP: dev) }
    var logLevel = LogLevel.info
    var maxConnections: Int?
    var pingIntervalSeconds = 30
    var deflate = true
    /// Where the truth lives (nil: SQLite in the data folder, hub.sqlite).
    var store: StoreLocation?
    /// `store`, or its default.
    var storeLocation: StoreLocation {
        store ?? .sqlite(path: (dataDir as NSString).appendingPathComponent("hub.sqlite"))
    }
    /// The Redis instances channels are sharded over (empty: the in-process broker, one node).
    var brokers: [RedisEndpoint] = []
    /// This node's name in the cluster: presence, probes and session ids carry it.
    var nodeID = NodeName.generated()
    /// Prefixes every Redis key and channel, so two clusters can share one Redis.
    var clusterName = "montrose"
    /// PostgreSQL connections this node writes and reads through. A conversation's writes always
    /// go to one writer, and writes with no conversation (users, notifications) to one writer,
    /// each in the order queued, as on SQLite's single writer.
    var pgWriters = 2
    var pgReaders = 2
    /// `--broker local` was given (only to be refused beside a redis:// one).
    private var brokerLocal = false
    /// Given, to be refused without a PostgreSQL store.
    private var pgWritersGiven = false
    private var pgReadersGiven = false

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// What the command line asks for: a hub to run, or only the usage or version text.
    enum Command: Sendable {
        case run(Configuration)
        /// `montrose-hub store new-epoch [flags]`: mark the store as restored (see docs/protocol.md `subscribe`).
        case newEpoch(Configuration)
        /// `montrose-hub migrate --from sqlite:PATH --to postgres://…`: copy a stopped hub's store.
        case migrate(MigrateCommand)
        case help
        case version
    }

    static let version = "montrose-hub 0.9.0 (protocol v1)"

    static let usage = """
    usage: montrose-hub [flags]   (every flag also reads MONTROSE_<FLAG>, e.g. MONTROSE_PORT)
      -h, --help                        this text;  --version  the version
      --host H --port P                 public listener (default port 8080; host 127.0.0.1 in
                                        development mode, 0.0.0.0 with --no-dev)
      --bridge-host H --bridge-port P   bridge listener (default 127.0.0.1:8081)
      --data DIR                        data folder (default ./hub-data)
      --jwt-secret S                    HS256 secret for tokens
      --bridge-key K                    bridge bearer key (repeatable)
      --tls-cert F --tls-key F          serve the public listener over TLS
      --hsts-max-age S                  Strict-Transport-Security max-age on HTTPS answers
                                        (default 63072000, two years; 0 = no header)
      --loops N                         event loops (default: cores)
      --echo-path P                     conformance echo route (off by default)
      --max-message N                   largest WebSocket message in bytes (default 1048576)
      --max-connections N               connections in total (default: what the open-file limit allows)
      --ping-interval S                 seconds of silence before the hub pings (default 30)
      --allowed-origin O                Origin allowed to open a WebSocket (repeatable; default any)
      --attachment-origin O             origin attachment URLs may point at, e.g. https://files.example.com
                                        (repeatable; default none: no attachments)
      --edit-window S                   seconds a sender may edit or delete a message (default 900)
      --search-index on|off             keep the message search index (default on)
      --durability full|normal          SQLite: full (default) fsyncs each group commit, so an ack
                                        survives a power cut; normal survives a process crash only
      --no-deflate                      do not offer permessage-deflate
      --bridge-max-body N               largest bridge request body in bytes (default 262144)
      --ops-rate N --ops-burst N        ops per second per connection and the burst (default 200, 400; 0 = off)
      --max-connections-per-user N      authenticated connections one user may hold (default 20)
      --max-unauthenticated N           WebSockets awaiting auth, hub-wide (default 2000)
      --smtp HOST:PORT --smtp-from A    mail delivery for the outbox
      --email-fallback-delay S          seconds a fallback mail waits (default 600)
      --smtp-retry S                    first retry delay after a temporary mail failure (default 30)
      --webhook URL --webhook-secret S  POST events to the backend (http:// or https://), signed
                                        with S (at least 16 bytes); both or neither
      --webhook-ca FILE                 PEM CAs an https:// webhook must chain to (default: the system's)
      --dev / --no-dev                  development mode (default on: demo users and data, generated
                                        secrets, /dev/token for loopback callers); production: --no-dev
      --log-level debug|info|error
      --store sqlite:PATH|postgres://…  where messages and notifications are stored (default:
                                        sqlite in the data folder; PostgreSQL for several nodes)
      --broker local|redis://HOST:PORT  how nodes hear each other (default local: one node);
                                        repeatable: channels are sharded over the instances
      --node-id ID                      this node's name (default: host name + random suffix)
      --cluster-name N                  prefix of every Redis key and channel (default montrose)
      --pg-writers N --pg-readers N     PostgreSQL connections for writes and reads (default 2, 2)

    montrose-hub store new-epoch [--data DIR | --store URL]
                                        after restoring the store from a backup: give it a new epoch,
                                        so clients resync from the beginning instead of keeping
                                        positions the restored store never had (takes effect when
                                        the hub next starts)

    montrose-hub migrate --from sqlite:PATH --to postgres://… [--verify-only]
                                        copy a stopped hub's SQLite store into an empty PostgreSQL
                                        database in one transaction, then check row counts and a
                                        checksum per table (exit 0; 1 names a table that differs);
                                        --verify-only runs the check again
    """

    /// Parses flags, falling back to the environment for those not given. `-h`/`--help` and
    /// `--version` anywhere win over everything else (even a bad flag beside them).
    static func command(_ args: [String], environment: [String: String]) throws(Invalid) -> Command {
        if args.contains(where: { $0 == "-h" || $0 == "--help" }) { return .help }
        if args.contains("--version") { return .version }
        if args.first == "store" {
            guard args.count >= 2, args[1] == "new-epoch" else {
                throw Invalid(description: "unknown store command (montrose-hub store new-epoch [flags])")
            }
            return .newEpoch(try parse(Array(args.dropFirst(2)), environment: environment))
        }
        if args.first == "migrate" { return .migrate(try MigrateCommand.parse(Array(args.dropFirst()))) }
        return .run(try parse(args, environment: environment))
    }

    /// Parses flags, falling back to the environment for those not given. An error names what
    /// the user typed: the flag, or the environment variable it came from.
    static func parse(_ args: [String], environment: [String: String]) throws(Invalid) -> Configuration {
        var c = Configuration()
        let given = try flags(args, valued: Self.valued, switches: Self.switches)
        // Environment first, so flags override it.
        var hostGiven = false
        for name in Self.valued + Self.switches {
            let key = environmentName(name)
            guard let raw = environment[key], !raw.isEmpty else { continue }
            if Self.switches.contains(name) {
                switch raw.lowercased() {
                case "1", "true", "yes", "on": try c.apply(name, nil, as: key)
                // Off means the other way, not "no opinion": MONTROSE_DEV=0 is production.
                case "0", "false", "no", "off": try c.apply(Self.opposite[name] ?? name, nil, as: key)
                default: throw Invalid(description: "\(key) is a switch: give 1, true, yes or on (or 0, false, no, off), got '\(raw)'")
                }
            } else if Self.repeatable.contains(name) {
                for part in raw.split(separator: ",") { try c.apply(name, String(part).trimmingCharacters(in: .whitespaces), as: key) }
            } else {
                try c.apply(name, raw, as: key)
            }
            if name == "host" { hostGiven = true }
        }
        var seenRepeatable = Set<String>()
        for (name, value) in given {
            if Self.repeatable.contains(name) && seenRepeatable.insert(name).inserted {
                c.clearList(name) // flags replace the environment's list
            }
            try c.apply(name, value, as: "--" + name)
            if name == "host" { hostGiven = true }
        }
        if c.dev && !hostGiven { c.host = "127.0.0.1" }
        try c.check()
        return c
    }

    /// The flags in `args` as (name without dashes, value), in order: `--name value`,
    /// `--name=value`, or a switch alone. `help` ends the message of an unknown flag.
    static func flags(_ args: [String], valued: [String], switches: [String],
                      help: String = "see --help") throws(Invalid) -> [(name: String, value: String?)] {
        var given: [(name: String, value: String?)] = []
        var i = 0
        while i < args.count {
            let arg = args[i]
            guard arg.hasPrefix("--") else { throw Invalid(description: "unexpected argument '\(arg)' (\(help))") }
            var name = String(arg.dropFirst(2))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            if switches.contains(name) {
                if value != nil { throw Invalid(description: "--\(name) takes no value") }
            } else if valued.contains(name) {
                if value == nil {
                    i += 1
                    guard i < args.count else { throw Invalid(description: "--\(name) needs a value") }
                    value = args[i]
                }
            } else {
                throw Invalid(description: "unknown flag --\(name) (\(help))")
            }
            given.append((name, value))
            i += 1
        }
        return given
    }

    /// `--bridge-key` ↔ `MONTROSE_BRIDGE_KEY`.
    static func environmentName(_ flag: String) -> String {
        "MONTROSE_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    static let valued = ["host", "port", "bridge-host", "bridge-port", "data", "jwt-secret", "bridge-key",
                         "tls-cert", "tls-key", "hsts-max-age", "loops", "echo-path", "max-message", "smtp", "smtp-from",
                         "allowed-origin", "log-level", "max-connections", "ping-interval",
                         "email-fallback-delay", "smtp-retry", "ops-rate", "ops-burst",
                         "max-connections-per-user", "max-unauthenticated", "bridge-max-body",
                         "store", "broker", "node-id", "cluster-name", "pg-writers", "pg-readers",
                         "webhook", "webhook-secret", "webhook-ca", "attachment-origin", "edit-window", "search-index",
                         "durability"]
    static let switches = ["dev", "no-dev", "no-deflate"]
    /// A switch set to off in the environment: the setting it turns on instead.
    static let opposite = ["dev": "no-dev", "no-dev": "dev", "no-deflate": "deflate"]
    static let repeatable: Set<String> = ["bridge-key", "allowed-origin", "broker", "attachment-origin"]

    private mutating func clearList(_ name: String) {
        if name == "bridge-key" { bridgeKeys = [] }
        if name == "allowed-origin" { allowedOrigins = [] }
        if name == "attachment-origin" { attachmentOrigins = [] }
        if name == "broker" { brokers = []; brokerLocal = false }
    }

    /// Sets one setting; `label` is how the user gave it (`--port` or `MONTROSE_PORT`), for errors.
    private mutating func apply(_ name: String, _ value: String?, as label: String) throws(Invalid) {
        let v = value ?? ""
        switch name {
        case "host": host = try Self.address(v, label)
        case "port": port = try Self.int(v, label, 0...65535)
        case "bridge-host": bridgeHost = try Self.address(v, label)
        case "bridge-port": bridgePort = try Self.int(v, label, 0...65535)
        case "data": dataDir = try Self.nonEmpty(v, label)
        case "jwt-secret":
            guard v.utf8.count >= 16 else { throw Invalid(description: "\(label) must be at least 16 bytes") }
            jwtSecret = v
        case "bridge-key":
            guard v.utf8.count >= 16 else { throw Invalid(description: "\(label) must be at least 16 bytes") }
            bridgeKeys.append(v)
        case "tls-cert": tlsCert = try Self.nonEmpty(v, label)
        case "tls-key": tlsKey = try Self.nonEmpty(v, label)
        case "hsts-max-age": hstsMaxAge = try Self.int(v, label, 0...315_360_000)
        case "loops": loops = try Self.int(v, label, 1...256)
        case "echo-path":
            guard v.hasPrefix("/"), v.count > 1, !["/ws", "/healthz"].contains(v) else {
                throw Invalid(description: "\(label) must be a path like /echo (not / , /ws or /healthz)")
            }
            echoPath = v
        case "max-message": maxMessage = try Self.int(v, label, 125...(256 << 20))
        case "max-connections": maxConnections = try Self.int(v, label, 1...10_000_000)
        case "ping-interval": pingIntervalSeconds = try Self.int(v, label, 1...3600)
        case "smtp":
            guard SMTPConfiguration.parse(v, from: Self.defaultSMTPFrom) != nil else {
                throw Invalid(description: "\(label) expects HOST:PORT, got '\(v)'")
            }
            smtp = v
        case "smtp-from":
            guard MailComposer.validateAddress(v) == nil else { throw Invalid(description: "\(label) must be an email address, got '\(v)'") }
            smtpFrom = v
        case "webhook":
            switch WebhookEndpoint.parse(v) {
            case .success(let endpoint): webhook = endpoint
            case .failure(let why): throw Invalid(description: "\(label) \(why)")
            }
        case "webhook-secret":
            // Never echoed: a refusal names the rule, not the value.
            guard v.utf8.count >= 16 else { throw Invalid(description: "\(label) must be at least 16 bytes") }
            webhookSecret = v
        case "webhook-ca": webhookCA = try Self.nonEmpty(v, label)
        case "bridge-max-body": bridgeMaxBody = try Self.int(v, label, 1_024...(64 << 20))
        case "ops-rate": opsPerSecond = try Self.int(v, label, 0...1_000_000)
        case "ops-burst": opsBurst = try Self.int(v, label, 1...1_000_000)
        case "max-connections-per-user": maxConnectionsPerUser = try Self.int(v, label, 1...1_000_000)
        case "max-unauthenticated": maxUnauthenticated = try Self.int(v, label, 1...10_000_000)
        case "email-fallback-delay": emailFallbackDelayMs = Int64(try Self.int(v, label, 0...604_800)) * 1000
        case "smtp-retry": smtpRetryMs = Int64(try Self.int(v, label, 1...86_400)) * 1000
        case "allowed-origin": allowedOrigins.append(try Self.nonEmpty(v, label))
        case "attachment-origin":
            guard let origin = AttachmentOrigin.parse(v) else {
                throw Invalid(description: "\(label) must be an origin like https://files.example.com (scheme, host, optional port), got '\(v)'")
            }
            attachmentOrigins.append(origin)
        case "edit-window": editWindowMs = Int64(try Self.int(v, label, 0...604_800)) * 1000
        case "durability":
            guard let d = SQLiteStore.Durability(rawValue: v) else { throw Invalid(description: "\(label) must be full or normal") }
            durability = d
            durabilityGiven = true
        case "search-index":
            switch v {
            case "on": searchIndex = true
            case "off": searchIndex = false
            default: throw Invalid(description: "\(label) must be on or off")
            }
        case "log-level":
            switch v {
            case "debug": logLevel = .debug
            case "info": logLevel = .info
            case "error": logLevel = .error
            default: throw Invalid(description: "\(label) must be debug, info or error")
            }
        case "store": store = try StoreLocation.parse(v, label)
        case "broker":
            if v == "local" { brokerLocal = true } else { brokers.append(try BrokerSetting.parse(v, label)) }
        case "node-id": nodeID = try NodeName.check(v, label)
        case "cluster-name": clusterName = try NodeName.check(v, label)
        case "pg-writers": pgWriters = try Self.int(v, label, 1...32); pgWritersGiven = true
        case "pg-readers": pgReaders = try Self.int(v, label, 1...64); pgReadersGiven = true
        case "dev": dev = true
        case "no-dev": dev = false
        case "no-deflate": deflate = false
        case "deflate": deflate = true
        default: throw Invalid(description: "unknown setting \(label)")
        }
    }

    private func check() throws(Invalid) {
        if brokerLocal && !brokers.isEmpty {
            throw Invalid(description: "--broker local and --broker redis://… do not go together")
        }
        // Nodes that hear each other must share the truth: a SQLite file is one process's.
        let onPostgres = if case .postgres = store { true } else { false }
        if !brokers.isEmpty && !onPostgres {
            throw Invalid(description: "--broker redis://… joins nodes that share one store: give --store postgres://…")
        }
        if !onPostgres && (pgWritersGiven || pgReadersGiven) {
            throw Invalid(description: "--pg-writers and --pg-readers are for a PostgreSQL store (--store postgres://…)")
        }
        if onPostgres && durabilityGiven && durability == .normal {
            throw Invalid(description: "--durability normal is for the SQLite store: PostgreSQL commits are as durable as its synchronous_commit setting")
        }
        if Set(brokers.map(\.address)).count != brokers.count {
            throw Invalid(description: "--broker names the same Redis twice")
        }
        if (webhook == nil) != (webhookSecret == nil) {
            throw Invalid(description: "--webhook and --webhook-secret (MONTROSE_WEBHOOK, MONTROSE_WEBHOOK_SECRET) go together")
        }
        if webhookCA != nil && webhook?.tls != true {
            throw Invalid(description: "--webhook-ca is for an https:// --webhook")
        }
        if (tlsCert == nil) != (tlsKey == nil) {
            throw Invalid(description: "--tls-cert and --tls-key (MONTROSE_TLS_CERT, MONTROSE_TLS_KEY) go together")
        }
        // Both listeners on one address would share it through SO_REUSEPORT: the kernel would
        // hand public connections to the bridge and bridge requests to the public side.
        let wildcard: Set<String> = ["0.0.0.0", "::"]
        if port != 0, port == bridgePort, host == bridgeHost || wildcard.contains(host) || wildcard.contains(bridgeHost) {
            throw Invalid(description: "the public listener (\(host):\(port)) and the bridge (\(bridgeHost):\(bridgePort)) need different ports")
        }
    }

    private static func int(_ v: String, _ label: String, _ range: ClosedRange<Int>) throws(Invalid) -> Int {
        guard let n = Int(v), range.contains(n) else {
            throw Invalid(description: "\(label) expects a whole number from \(range.lowerBound) to \(range.upperBound), got '\(v)'")
        }
        return n
    }

    private static func nonEmpty(_ v: String, _ label: String) throws(Invalid) -> String {
        guard !v.isEmpty else { throw Invalid(description: "\(label) needs a value") }
        return v
    }

    private static func address(_ v: String, _ label: String) throws(Invalid) -> String {
        var a4 = in_addr()
        var a6 = in6_addr()
        guard v == "localhost" || inet_pton(AF_INET, v, &a4) == 1 || inet_pton(AF_INET6, v, &a6) == 1 else {
            throw Invalid(description: "\(label) expects an IP address, got '\(v)'")
        }
        return v
    }
}
