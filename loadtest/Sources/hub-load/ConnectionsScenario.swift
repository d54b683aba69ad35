import Foundation
import Protocol

// Scenario `connections`: how fast the hub takes N authenticated, subscribed connections and
// what each costs it in memory. Connection i is client k<i> with its token in the URL (the
// hub authenticates at the upgrade) and subscribes to its own conversation conv:website:k<i>;
// at most --concurrency are between their connect attempt and their subscribe reply. The
// hub's VmRSS is read before, once every connection is established, and after --hold seconds.
struct ConnectionsOptions {
    var common = CommonOptions()
    var connections = 10_000
    var hold = 5.0
    var hubPID: Int32?

    static let usage = """
    usage: hub-load connections --url ws://127.0.0.1:PORT/ws (--data DIR | --jwt-secret S) [options]
      --connections N     connections, one client user k<i> each (default 10000)
      --hold S            seconds to hold them all open before the last RSS reading (default 5)
      --hub-pid PID       the hub's process id, for its VmRSS (without it RSS is not measured)
    """

    static func parse(_ args: ArraySlice<String>) throws(UsageError) -> ConnectionsOptions {
        var o = ConnectionsOptions()
        o.common = try CommonOptions.parse(args, usage: usage) { flag, f throws(UsageError) -> Bool in
            switch flag {
            case "--connections": o.connections = try f.int(flag, 1...1_000_000)
            case "--hold": o.hold = try f.seconds(flag, 0...3600)
            case "--hub-pid": o.hubPID = Int32(try f.int(flag, 1...Int(Int32.max)))
            default: return false
            }
            return true
        }
        if let pid = o.hubPID, HubMemory.rssKB(pid: pid) == nil {
            throw UsageError(message: "cannot read VmRSS from /proc/\(pid)/status (is --hub-pid the hub's pid?)")
        }
        return o
    }
}

final class ConnectionsScenario: WebSocketDelegate {
    private enum Stage { case connecting, subscribing, ready, failed }

    private let o: ConnectionsOptions
    private let pool: ClientPool
    private var stages: [Stage]
    private var authed: [Bool]
    private var holding = false
    private var established = 0
    private var lastReady: UInt64 = 0
    private var setup = Histogram()
    private var failures = Tally()
    private var dropped = Tally()

    init(options: ConnectionsOptions, secret: String) {
        o = options
        let base = options.common.url.path
        pool = ClientPool(count: options.connections, common: options.common) { Tokens.clientPath(base, user: "k\($0)", secret: secret) }
        stages = Array(repeating: .connecting, count: options.connections)
        authed = Array(repeating: false, count: options.connections)
    }

    func run() -> Bool {
        let cpuBefore = CPUTime.used()
        let rss = { self.o.hubPID.flatMap { HubMemory.rssKB(pid: $0) } }
        let rssBefore = rss()

        _ = pool.openAll(self, timeout: o.common.timeout)
        for i in stages.indices where stages[i] == .connecting || stages[i] == .subscribing {
            fail(i, "not ready within --timeout \(o.common.timeout) s")
        }
        let connectSeconds = lastReady > pool.firstAttempt ? Clock.seconds(lastReady - pool.firstAttempt) : 0
        let rssAfter = rss()

        holding = true
        let holdEnd = Clock.nanos() + UInt64(o.hold * 1e9)
        while Clock.nanos() < holdEnd { pool.turn(timeoutMs: 50, self) }
        let rssHold = rss()
        pool.closeAll()

        let failed = o.connections - established
        let perConn: Double? = rssBefore.flatMap { b in rssAfter.map { a in established > 0 ? Double((a - b) * 1024) / Double(established) : 0 } }
        let rate = connectSeconds > 0 ? Double(established) / connectSeconds : 0
        let passed = failed == 0 && dropped.total == 0

        let url = o.common.url
        print("hub-load connections: \(o.connections) to ws://\(url.host):\(url.port)\(url.path) as clients k0…k\(o.connections - 1), "
            + "each subscribed to conv:website:k<i>; \(o.common.concurrency) handshakes in flight at most")
        print("established \(established)/\(o.connections) in \(Fmt.f(connectSeconds, 2)) s: \(Fmt.f(rate)) connects/s "
            + "(first attempt → last subscribe reply)")
        print("failed      \(failed) (\(failures.text))")
        print("per connection, attempt → subscribed, µs p50 / p90 / p99 / p99.9 / max: \(Fmt.percentiles(setup))")
        if o.hubPID == nil {
            print("hub RSS: not measured (give --hub-pid)")
        } else {
            let kb = { (v: Int?) in v.map { "\($0) kB" } ?? "unreadable" }
            print("hub RSS: before \(kb(rssBefore)), after connecting \(kb(rssAfter)), after \(Fmt.f(o.hold)) s hold \(kb(rssHold))"
                + (perConn.map { " → \(Int($0.rounded())) bytes per connection" } ?? ""))
        }
        print("closed by the hub during the hold: \(dropped.total) (\(dropped.text))")
        print("generator: \(Fmt.f(CPUTime.used() - cpuBefore, 2)) s cpu")
        print("result: \(passed ? "PASS" : "FAIL")")

        var j = JSONObject()
        j["scenario"] = "connections"
        j["connections"] = .int(Int64(o.connections))
        j["concurrency"] = .int(Int64(o.common.concurrency))
        j["established"] = .int(Int64(established))
        j["failed"] = .int(Int64(failed))
        j["failure_detail"] = failures.json
        j["connect_s"] = Fmt.round(connectSeconds, 3)
        j["connects_per_s"] = Fmt.round(rate)
        j["setup_us"] = Fmt.histogram(setup)
        j["rss_before_kb"] = rssBefore.map { .int(Int64($0)) } ?? .null
        j["rss_after_kb"] = rssAfter.map { .int(Int64($0)) } ?? .null
        j["rss_hold_kb"] = rssHold.map { .int(Int64($0)) } ?? .null
        j["bytes_per_conn"] = perConn.map { .int(Int64($0.rounded())) } ?? .null
        j["hold_s"] = .double(o.hold)
        j["dropped"] = .int(Int64(dropped.total))
        j["passed"] = .bool(passed)
        print(JSON.object(j).text)
        return passed
    }

    private func fail(_ i: Int, _ reason: String) {
        guard stages[i] != .failed && stages[i] != .ready else { return }
        stages[i] = .failed
        failures.add(reason)
        pool.settle(i)
        pool.close(i)
    }

    // MARK: WebSocketDelegate

    func webSocketOpened(_ index: Int) {
        // Authenticated by the URL token already; the subscribe can follow at once.
        stages[index] = .subscribing
        pool.send(index, Array(#"{"id":2,"op":"subscribe","channel":"conv:website:k\#(index)"}"#.utf8))
    }

    func webSocket(_ index: Int, text: UnsafeRawBufferPointer) {
        guard stages[index] == .subscribing, case .reply(let r) = FieldScanner.decode(text) else { return }
        if r.id == -1 { // the URL token's auth reply (id null)
            guard r.ok else { return fail(index, "auth: \(r.errorCode)") }
            authed[index] = true
        } else if r.id == 2 {
            guard r.ok, r.lastSeq >= 0, authed[index] else { return fail(index, "subscribe: \(r.ok ? "before auth" : r.errorCode)") }
            stages[index] = .ready
            established += 1
            lastReady = Clock.nanos()
            setup.record(nanos: lastReady - pool.startedAt[index])
            pool.settle(index)
        }
    }

    func webSocketClosed(_ index: Int, reason: String) {
        if stages[index] == .ready {
            dropped.add(holding ? reason : "before the hold: \(reason)")
        } else {
            fail(index, reason)
        }
    }
}
