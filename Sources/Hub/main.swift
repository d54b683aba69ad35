import CLinux
import Foundation
import Glibc
import Core
import Persistence
import Protocol

// montrose-hub: parse flags, start the loops, print one line per listener, then wait for
// signals on this (main) thread. Loops never see signals: they are blocked before the loop
// threads start, and sigwait takes them here.

montrose_line_buffer_stdout()
signal(SIGPIPE, SIG_IGN)
var handled = sigset_t()
sigemptyset(&handled)
for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&handled, s) }
pthread_sigmask(SIG_BLOCK, &handled, nil)

func fail(_ message: String) -> Never {
    Log.flush()
    FileHandle.standardError.write(Data("montrose-hub: \(message)\n".utf8))
    exit(2)
}

var configuration: Configuration
do {
    switch try Configuration.command(Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment) {
    case .help: print(Configuration.usage); exit(0)
    case .version: print(Configuration.version); exit(0)
    case .run(let c): configuration = c
    case .migrate(let m): m.run()
    case .newEpoch(let c):
        let location = c.storeLocation
        do {
            let epoch: String
            switch location {
            case .sqlite(let path):
                guard FileManager.default.fileExists(atPath: path) else { fail("no store at \(path)") }
                epoch = try SQLiteStore.newEpoch(path: path)
            case .postgres(let url):
                epoch = try PostgresStore.newEpoch(url: url)
            }
            print("montrose-hub: the store at \(location.description) has the new epoch \(epoch); clients resync when the hub next starts")
            exit(0)
        } catch {
            fail("cannot give the store a new epoch: \(error)")
        }
    }
} catch {
    fail(error.description)
}
Log.level = configuration.logLevel

// Both addresses and the TLS files are checked before anything is written: a hub that cannot
// start leaves the data folder as it found it (no generated secrets, no seeded database).
for (name, host, port) in [("public", configuration.host, configuration.port),
                           ("bridge", configuration.bridgeHost, configuration.bridgePort)] {
    do { try Listener.probe(host: host, port: port) } catch {
        fail("cannot listen on \(host):\(port) for the \(name) listener: \(error)")
    }
}
if let cert = configuration.tlsCert, let key = configuration.tlsKey {
    do { _ = try TLSContext(certificateFile: cert, keyFile: key) } catch { fail(error.description) }
}
// Every WebSocket handshake hashes with SHA-1: an OpenSSL without it stops the hub here, not at
// its first connect.
if Digest.sha1.hash([]) == nil { fail("OpenSSL offers no SHA-1 (the WebSocket handshake needs it)") }

if configuration.jwtSecret == nil || configuration.bridgeKeys.isEmpty {
    guard configuration.dev else {
        fail("--jwt-secret and --bridge-key (MONTROSE_JWT_SECRET, MONTROSE_BRIDGE_KEY) are required outside development mode")
    }
    do {
        let secrets = try DevSecrets.loadOrCreate(dataDir: configuration.dataDir)
        if configuration.jwtSecret == nil { configuration.jwtSecret = secrets.jwtSecret }
        if configuration.bridgeKeys.isEmpty { configuration.bridgeKeys = [secrets.bridgeKey] }
        if secrets.generated {
            print("montrose-hub: development secrets generated in \(secrets.path) (reused on later runs)")
            print("  jwt secret: \(secrets.jwtSecret)")
            print("  bridge key: \(secrets.bridgeKey)")
        } else {
            print("montrose-hub: using development secrets from \(secrets.path)")
        }
    } catch {
        fail("cannot prepare data folder \(configuration.dataDir): \(error.localizedDescription)")
    }
}

let fileLimit = montrose_raise_open_file_limit()
let server: HubServer
do {
    server = try HubServer(configuration: configuration)
} catch {
    fail(error.description)
}
server.start()
let scheme = configuration.tlsCert == nil ? ("http", "ws") : ("https", "wss")
print("montrose-hub: public listening on \(scheme.0)://\(configuration.host):\(server.publicListener.port) (WebSocket \(scheme.1)://…:\(server.publicListener.port)/ws, \(configuration.loops) loop\(configuration.loops == 1 ? "" : "s"), up to \(server.publicListener.limits.maxConnections) connections with \(fileLimit) open files)")
print("montrose-hub: bridge listening on http://\(configuration.bridgeHost):\(server.bridgeListener.port)")
if let echo = configuration.echoPath { print("montrose-hub: conformance echo route on \(echo)") }
if configuration.dev {
    print("montrose-hub: DEVELOPMENT MODE: demo users and data, and POST /dev/token hands any demo user's token (admin too) to callers on this machine (127.0.0.1/::1 only); run with --no-dev in production")
}
Log.info("listening", ["listener": "public", "address": "\(configuration.host):\(server.publicListener.port)",
                        "tls": configuration.tlsCert == nil ? "off" : "on"])
Log.info("listening", ["listener": "bridge", "address": "\(configuration.bridgeHost):\(server.bridgeListener.port)"])
Log.info("started", ["loops": "\(configuration.loops)", "dev": "\(configuration.dev)",
                     "max_connections": "\(server.publicListener.limits.maxConnections)"])

while true {
    var signalNumber: Int32 = 0
    sigwait(&handled, &signalNumber)
    if signalNumber == SIGHUP {
        if configuration.tlsCert == nil {
            Log.info("sighup", ["action": "nothing to reload (no TLS)"])
        } else {
            server.reloadTLS()
        }
        continue
    }
    Log.info("shutdown", ["signal": signalNumber == SIGTERM ? "TERM" : "INT"])
    server.shutdown()
    Log.info("stopped")
    Log.flush()
    exit(0)
}
