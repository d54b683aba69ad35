import Foundation
import Glibc

// Command-line flags of `hub-load chat`. A bad flag is a usage error (exit 2) with one line
// naming it; the target must be a loopback address, so the generator cannot be pointed at
// someone else's server by mistake.
struct UsageError: Error { let message: String }

enum ReplyParser: String { case scan, json }

struct ChatOptions {
    var host = "127.0.0.1"
    var port = 0
    /// Every `--url`'s port (several nodes): connection i goes to ports[i % count], so a
    /// conversation's two connections are on two nodes when there are two.
    var ports: [Int] = []
    var path = "/ws"
    var conversations = 100
    var duration = 10.0
    var window = 4
    var maxMessages = 2_000_000
    var setupTimeout = 15.0
    var drain = 2.0
    var textBytes = 64
    var service = "website"
    var parser = ReplyParser.scan
    var jwtSecret: String?
    var dataDir: String?

    static let usage = """
    usage: hub-load chat --url ws://127.0.0.1:PORT/ws [--url … for more nodes] (--jwt-secret S | --data DIR) [options]
      --conversations N   client conversations, two connections each (default 100)
      --duration S        seconds of sending (default 10)
      --window W          sends in flight per sender (default 4)
      --max-messages M    hard cap on sends in total (default 2000000)
      --setup-timeout S   seconds allowed for connect, upgrade, auth, subscribe (default 15)
      --drain S           seconds to wait for outstanding acks and pushes after sending (default 2)
      --text-bytes N      message text length in bytes, 32-8000 (default 64)
      --service NAME      service of the conversations conv:<service>:c<i> (default website)
      --parser scan|json  how replies and pushes are read: a field scanner or the full JSON parser (default scan)
      --jwt-secret S      HS256 secret the hub checks tokens with
      --data DIR          the hub's data folder: the secret is read from DIR/dev-secrets
    """

    static func parse(_ args: ArraySlice<String>) throws(UsageError) -> ChatOptions {
        var o = ChatOptions()
        var urls: [String] = []
        var i = args.startIndex
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < args.endIndex else { throw UsageError(message: "\(flag) needs a value") }
            return args[i]
        }
        func int(_ flag: String, _ range: ClosedRange<Int>) throws(UsageError) -> Int {
            let v = try value(flag)
            guard let n = Int(v.replacingOccurrences(of: "_", with: "")), range.contains(n) else {
                throw UsageError(message: "\(flag) must be an integer in \(range.lowerBound)...\(range.upperBound), got \(v)")
            }
            return n
        }
        func seconds(_ flag: String, _ range: ClosedRange<Double>) throws(UsageError) -> Double {
            let v = try value(flag)
            guard let d = Double(v), range.contains(d) else {
                throw UsageError(message: "\(flag) must be seconds in \(range.lowerBound)...\(range.upperBound), got \(v)")
            }
            return d
        }
        while i < args.endIndex {
            let flag = args[i]
            switch flag {
            case "--url": urls.append(try value(flag))
            case "--conversations": o.conversations = try int(flag, 1...30_000)
            case "--duration": o.duration = try seconds(flag, 0.1...3600)
            case "--window": o.window = try int(flag, 1...1024)
            case "--max-messages": o.maxMessages = try int(flag, 1...1_000_000_000)
            case "--setup-timeout": o.setupTimeout = try seconds(flag, 0.1...600)
            case "--drain": o.drain = try seconds(flag, 0...60)
            case "--text-bytes": o.textBytes = try int(flag, 32...8000)
            case "--service":
                o.service = try value(flag)
                guard ["marketing", "website", "courses", "support"].contains(o.service) else {
                    throw UsageError(message: "--service must be marketing, website, courses or support")
                }
            case "--parser":
                let v = try value(flag)
                guard let p = ReplyParser(rawValue: v) else { throw UsageError(message: "--parser must be scan or json, got \(v)") }
                o.parser = p
            case "--jwt-secret": o.jwtSecret = try value(flag)
            case "--data": o.dataDir = try value(flag)
            case "-h", "--help": throw UsageError(message: usage)
            default: throw UsageError(message: "unknown flag \(flag)")
            }
            i += 1
        }
        guard let url = urls.first else { throw UsageError(message: "--url is required") }
        try o.setURL(url)
        o.ports = [o.port]
        for u in urls.dropFirst() {
            let next = try LoopbackURL.parse(u, scheme: "ws", flag: "--url")
            // Several nodes of one hub on this machine: only the port differs.
            guard next.host == o.host, (next.path.isEmpty ? "/ws" : next.path) == o.path else {
                throw UsageError(message: "--url: every node must have the same host and path as the first, got \(u)")
            }
            o.ports.append(next.port)
        }
        if o.jwtSecret == nil && o.dataDir == nil { throw UsageError(message: "--jwt-secret or --data is required") }
        return o
    }

    /// ws://HOST:PORT/PATH where HOST is an IPv4 address in 127.0.0.0/8 or `localhost`.
    private mutating func setURL(_ url: String) throws(UsageError) {
        let u = try LoopbackURL.parse(url, scheme: "ws", flag: "--url")
        (host, port, path) = (u.host, u.port, u.path.isEmpty ? "/ws" : u.path)
    }
}
