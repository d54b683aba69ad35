import Foundation
import Glibc

// Scenario `notify`: a role fan-out through the bridge. Seeds --users clients (PUT
// /v1/users, pipelined), connects --online of them over WebSockets, posts one notification
// to the role `client`, and measures
//   - the bell latency: POST written → `notification` push read, on every online connection;
//   - the fan-out time: POST written → the last seeded user has it stored (polled via the bridge).
// One thread, one epoll loop; every phase bounded by --timeout.
struct NotifyOptions {
    var host = "127.0.0.1"
    var port = 0
    var bridgePort = 0
    var users = 100_000
    var online = 1_000
    var timeout = 120.0
    var jwtSecret: String?
    var bridgeKey: String?
    var dataDir: String?

    static let usage = """
    usage: hub-load notify --url ws://127.0.0.1:PORT/ws --bridge http://127.0.0.1:PORT (--data DIR | --jwt-secret S --bridge-key K)
      --users N     clients seeded through the bridge (default 100000)
      --online M    of them connected while the notification goes out (default 1000)
      --timeout S   bound of each phase in seconds (default 120)
    """

    static func parse(_ args: ArraySlice<String>) throws(UsageError) -> NotifyOptions {
        var o = NotifyOptions()
        var i = args.startIndex
        func value(_ flag: String) throws(UsageError) -> String {
            i += 1
            guard i < args.endIndex else { throw UsageError(message: "\(flag) needs a value") }
            return args[i]
        }
        func loopback(_ url: String, _ scheme: String) throws(UsageError) -> Int {
            let prefix = "\(scheme)://127.0.0.1:"
            guard url.hasPrefix(prefix), let port = Int(url.dropFirst(prefix.count).prefix { $0.isNumber }) else {
                throw UsageError(message: "expected \(prefix)PORT..., got \(url)")
            }
            return port
        }
        while i < args.endIndex {
            let flag = args[i]
            switch flag {
            case "--url": o.port = try loopback(try value(flag), "ws")
            case "--bridge": o.bridgePort = try loopback(try value(flag), "http")
            case "--users": o.users = Int(try value(flag)) ?? -1
            case "--online": o.online = Int(try value(flag)) ?? -1
            case "--timeout": o.timeout = Double(try value(flag)) ?? -1
            case "--jwt-secret": o.jwtSecret = try value(flag)
            case "--bridge-key": o.bridgeKey = try value(flag)
            case "--data": o.dataDir = try value(flag)
            default: throw UsageError(message: "unknown flag \(flag)\n\(usage)")
            }
            i += 1
        }
        guard o.port > 0, o.bridgePort > 0 else { throw UsageError(message: "--url and --bridge are required\n\(usage)") }
        guard (1...1_000_000).contains(o.users), (0...min(o.users, 19_000)).contains(o.online), o.timeout > 0 else {
            throw UsageError(message: "--users 1–1000000, --online 0–min(users, 19000), --timeout > 0")
        }
        if o.jwtSecret == nil || o.bridgeKey == nil {
            guard let dir = o.dataDir else { throw UsageError(message: "give --data DIR or both --jwt-secret and --bridge-key") }
            let path = (dir as NSString).appendingPathComponent("dev-secrets")
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw UsageError(message: "cannot read \(path)") }
            for line in text.split(separator: "\n") {
                if line.hasPrefix("jwt_secret="), o.jwtSecret == nil { o.jwtSecret = String(line.dropFirst("jwt_secret=".count)) }
                if line.hasPrefix("bridge_key="), o.bridgeKey == nil { o.bridgeKey = String(line.dropFirst("bridge_key=".count)) }
            }
        }
        guard o.jwtSecret != nil, o.bridgeKey != nil else { throw UsageError(message: "no secrets found") }
        return o
    }
}

final class NotifyScenario: WebSocketDelegate {
    private let o: NotifyOptions
    private let poller = Poller()
    private var conns: [WebSocketConnection?] = []
    private var ready: [Bool] = []
    private var got: [Bool] = []
    private var readyCount = 0
    private var gotCount = 0
    private var posted: UInt64 = 0
    private var bell = Histogram()
    private var errors: [String] = []
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    init(options: NotifyOptions) { o = options }
    deinit { scratch.deallocate() }

    func run() -> Bool {
        let key = o.bridgeKey ?? ""
        let bridge: BridgeHTTP
        do { bridge = try BridgeHTTP(host: o.host, port: o.bridgePort, key: key) } catch {
            print("notify: \(error.message)")
            return false
        }
        // 1. Seed the users.
        let seedStart = Clock.nanos()
        var i = 0
        while i < o.users {
            let end = min(o.users, i + 500)
            let batch = (i..<end).map { n in bridge.encode("PUT", "/v1/users/n\(n)", #"{"role":"client","name":"N \#(n)"}"#) }
            guard let answers = try? bridge.pipeline(batch), answers.allSatisfy({ $0.0 == 200 }) else {
                print("notify: seeding users failed near n\(i)")
                return false
            }
            i = end
        }
        let seedSeconds = Clock.seconds(Clock.nanos() - seedStart)

        // 2. Connect and authenticate the online ones.
        for n in 0..<o.online {
            var err: Int32 = 0
            conns.append(WebSocketConnection(index: n, host: o.host, port: o.port, path: "/ws", poller: poller, failure: &err))
            ready.append(false)
            got.append(false)
        }
        let setupDeadline = Clock.nanos() + UInt64(o.timeout * 1e9)
        while readyCount < o.online && Clock.nanos() < setupDeadline { turn() }
        guard readyCount == o.online else {
            print("notify: only \(readyCount) of \(o.online) connections authenticated; \(errors.prefix(3))")
            return false
        }

        // 3. One notification to the whole role.
        posted = Clock.nanos()
        guard let answer = try? bridge.request("POST", "/v1/notifications",
            #"{"to":{"role":"client"},"service":"platform","category":"updates","title":"Load test announcement","body":"hub-load notify"}"#),
              answer.0 == 201 else {
            print("notify: the POST failed")
            return false
        }
        let answered = Clock.nanos()
        let deliverDeadline = Clock.nanos() + UInt64(o.timeout * 1e9)
        while gotCount < o.online && Clock.nanos() < deliverDeadline { turn() }
        let allDelivered = Clock.nanos()

        // 4. When is the last user's copy stored?
        var stored: UInt64 = 0
        while Clock.nanos() < deliverDeadline {
            if let r = try? bridge.request("GET", "/v1/users/n\(o.users - 1)/notifications?limit=1"), r.1.contains(#""items":[{"#) {
                stored = Clock.nanos()
                break
            }
            usleep(5_000)
        }
        for c in conns { c?.close() }

        let fanout = stored > 0 ? Clock.seconds(stored - posted) : -1
        let ms = { (ns: UInt64) in String(format: "%.1f", Double(ns) / 1e6) }
        print("hub-load notify: \(o.users) clients seeded in \(String(format: "%.1f", seedSeconds)) s, \(o.online) online")
        print("  POST answered in \(ms(answered - posted)) ms: \(answer.1)")
        print("  bell (POST → notification push) on \(gotCount)/\(o.online) online: p50 \(bell.percentile(50) / 1000) ms, p99 \(bell.percentile(99) / 1000) ms, max \(bell.max / 1000) ms; all delivered after \(ms(allDelivered - posted)) ms")
        print("  fan-out stored for all \(o.users) users after \(String(format: "%.2f", fanout)) s (\(fanout > 0 ? Int(Double(o.users) / fanout) : 0) users/s)")
        print(#"{"scenario":"notify","users":\#(o.users),"online":\#(o.online),"delivered":\#(gotCount),"bell_p50_ms":\#(Double(bell.percentile(50)) / 1000),"bell_p99_ms":\#(Double(bell.percentile(99)) / 1000),"bell_max_ms":\#(Double(bell.max) / 1000),"fanout_seconds":\#(fanout)}"#)
        return gotCount == o.online && stored > 0
    }

    private func turn() {
        poller.wait(timeoutMs: 20) { token, events in
            conns[Int(token)]?.handle(events, scratch: scratch, self)
        }
        for c in conns { c?.flush(self) }
    }

    func webSocketOpened(_ index: Int) {
        let token = Tokens.client("n\(index)", secret: o.jwtSecret ?? "")
        let auth = Array(#"{"id":1,"op":"auth","token":"\#(token)"}"#.utf8)
        _ = auth.withUnsafeBytes { conns[index]?.queueText($0) }
    }

    func webSocket(_ index: Int, text: UnsafeRawBufferPointer) {
        let s = String(decoding: text, as: UTF8.self)
        if !ready[index] {
            if s.hasPrefix(#"{"id":1,"ok":true"#) { ready[index] = true; readyCount += 1 }
            else if s.hasPrefix(#"{"id":1"#) { errors.append("auth: \(s.prefix(120))") }
            return
        }
        if !got[index] && posted > 0 && s.hasPrefix(#"{"type":"notification""#) {
            got[index] = true
            gotCount += 1
            bell.record(nanos: Clock.nanos() - posted)
        }
    }

    func webSocketClosed(_ index: Int, reason: String) {
        if !got[index] { errors.append("closed: \(reason)") }
    }
}
