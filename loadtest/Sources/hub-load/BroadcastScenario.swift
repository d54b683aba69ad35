import Foundation
import Protocol

// Scenario `broadcast`: one announcement to everyone online. --online clients b<i> connect
// with their token in the URL (authenticated at the upgrade; every authenticated connection
// joins the `all` audience there, so the users need not have been created through the
// bridge), then POST /v1/broadcasts {"audience":"all",...} goes through the bridge --rounds
// times. Each round measures, on every connection, the time from the POST being written to
// its `broadcast` push being read, and the time until all of them had it; the next round
// starts once the round is complete (or --timeout passed) and --pause has elapsed.
struct BroadcastOptions {
    var common = CommonOptions()
    var online = 19_000
    var rounds = 3
    var pause = 0.5

    static let usage = """
    usage: hub-load broadcast --url ws://127.0.0.1:PORT/ws --bridge http://127.0.0.1:PORT (--data DIR | --jwt-secret S --bridge-key K) [options]
      --online N          connected clients b0…b<N-1> (default 19000)
      --rounds K          broadcasts posted one after the other (default 3)
      --pause S           seconds between a complete round and the next POST (default 0.5)
    """

    static func parse(_ args: ArraySlice<String>) throws(UsageError) -> BroadcastOptions {
        var o = BroadcastOptions()
        o.common = try CommonOptions.parse(args, usage: usage) { flag, f throws(UsageError) -> Bool in
            switch flag {
            case "--online": o.online = try f.int(flag, 1...1_000_000)
            case "--rounds": o.rounds = try f.int(flag, 1...100)
            case "--pause": o.pause = try f.seconds(flag, 0...60)
            default: return false
            }
            return true
        }
        guard o.common.bridge != nil else { throw UsageError(message: "--bridge http://127.0.0.1:PORT is required") }
        return o
    }
}

final class BroadcastScenario: WebSocketDelegate {
    private struct Round {
        var status = 0
        var deliveredLive: Int64 = -1
        var delivered = 0
        var answerMicros: UInt64?
        var allMicros: UInt64?
        var latency = Histogram()
    }

    private let o: BroadcastOptions
    private let bridgeKey: String
    private let pool: ClientPool
    private var ready: [Bool]
    /// The last round whose push each connection read (0: none yet).
    private var gotRound: [Int]
    private var live = 0
    private var round = 0
    /// False once the current round is over (complete or past --timeout).
    private var roundOpen = false
    private var posted: UInt64 = 0
    private var current = Round()
    private var errors = Tally()
    private var setupFailures = Tally()

    private static let pushPrefix = Array(#"{"type":"broadcast""#.utf8)
    private static let bodyKey = Array(#""body":"hub-load round "#.utf8)

    init(options: BroadcastOptions, secret: String, bridgeKey: String) {
        o = options
        self.bridgeKey = bridgeKey
        let base = options.common.url.path
        pool = ClientPool(count: options.online, common: options.common) { Tokens.clientPath(base, user: "b\($0)", secret: secret) }
        ready = Array(repeating: false, count: options.online)
        gotRound = Array(repeating: 0, count: options.online)
    }

    func run() -> Bool {
        let cpuBefore = CPUTime.used()
        let t0 = Clock.nanos()
        for _ in pool.openAll(self, timeout: o.common.timeout) {
            setupFailures.add("not ready within --timeout \(o.common.timeout) s")
        }
        let setupSeconds = Clock.seconds(Clock.nanos() - t0)
        let connected = live

        var rounds: [Round] = []
        var fatal: String?
        if connected == 0 {
            fatal = "no connection finished setup"
        } else if let bridge = o.common.bridge {
            do {
                let http = try BridgeHTTP(host: bridge.host, port: bridge.port, key: bridgeKey)
                for r in 1...o.rounds {
                    rounds.append(try broadcast(r, http))
                    if r < o.rounds { keepReading(seconds: o.pause) }
                }
            } catch {
                fatal = error.message
            }
        }
        pool.closeAll()
        return report(rounds: rounds, connected: connected, setupSeconds: setupSeconds, fatal: fatal, cpu: CPUTime.used() - cpuBefore)
    }

    /// Posts round `r` and reads pushes until every open connection has it, or --timeout.
    private func broadcast(_ r: Int, _ http: BridgeHTTP) throws(UsageError) -> Round {
        round = r
        current = Round()
        roundOpen = true
        defer { roundOpen = false }
        let body = #"{"audience":"all","title":"bench","body":"hub-load round \#(r)"}"#
        let request = http.encode("POST", "/v1/broadcasts", body)
        try http.write(request)
        posted = Clock.nanos()
        let deadline = posted + UInt64(o.common.timeout * 1e9)
        var answered = false
        while Clock.nanos() < deadline && !(answered && current.delivered >= live) {
            pool.turn(timeoutMs: 5, self)
            if !answered, let (status, text) = try http.answerIfReady() {
                answered = true
                current.answerMicros = (Clock.nanos() - posted) / 1000
                current.status = status
                current.deliveredLive = (try? JSONParser.parse(text))?["delivered_live"]?.intValue ?? -1
                if status != 201 { errors.add("POST /v1/broadcasts answered \(status): \(text.prefix(200))") }
            }
        }
        if !answered { errors.add("POST /v1/broadcasts not answered within --timeout") }
        if current.delivered < o.online { errors.add("round \(r): \(o.online - current.delivered) connections without the push") }
        return current
    }

    /// Runs the loop for `seconds` (late pushes are counted; pings are answered).
    private func keepReading(seconds: Double) {
        let end = Clock.nanos() + UInt64(seconds * 1e9)
        while Clock.nanos() < end { pool.turn(timeoutMs: 10, self) }
    }

    /// Prints the table and the JSON line; true when every check passed.
    private func report(rounds: [Round], connected: Int, setupSeconds: Double, fatal: String?, cpu: Double) -> Bool {
        let url = o.common.url
        print("hub-load broadcast: \(o.online) clients b0…b\(o.online - 1) online on ws://\(url.host):\(url.port)\(url.path), "
            + "\(o.rounds) round\(o.rounds == 1 ? "" : "s") of POST /v1/broadcasts {\"audience\":\"all\"}")
        print("setup: \(connected)/\(o.online) authenticated in \(Fmt.f(setupSeconds, 2)) s")
        if let fatal { print("FATAL: \(fatal)") }
        print("")
        print("round  status  delivered  hub's delivered_live  answer ms   p50 ms   p99 ms   max ms    all ms")
        let ms = { (v: UInt64?) in v.map { Fmt.f(Fmt.ms($0), 1) } ?? "-" }
        for (k, r) in rounds.enumerated() {
            let cols = [
                Fmt.pad("\(k + 1)", 5), Fmt.pad("\(r.status)", 7), Fmt.pad("\(r.delivered)", 10), Fmt.pad("\(r.deliveredLive)", 21),
                Fmt.pad(ms(r.answerMicros), 10), Fmt.pad(ms(r.latency.percentile(50)), 8), Fmt.pad(ms(r.latency.percentile(99)), 8),
                Fmt.pad(ms(r.latency.max), 8), Fmt.pad(ms(r.allMicros), 9),
            ]
            print(cols.joined(separator: " "))
        }
        let complete = rounds.compactMap(\.allMicros).sorted()
        let median: Double? = complete.isEmpty ? nil
            : complete.count % 2 == 1 ? Fmt.ms(complete[complete.count / 2])
            : (Fmt.ms(complete[complete.count / 2 - 1]) + Fmt.ms(complete[complete.count / 2])) / 2
        let deliveredMin = rounds.map(\.delivered).min() ?? 0
        print("all-delivered median: \(median.map { Fmt.f($0, 1) + " ms" } ?? "-") over \(complete.count) complete round(s); "
            + "fewest delivered in a round: \(deliveredMin)/\(o.online)")
        var detail = errors
        for (k, v) in setupFailures.counts { detail.add("setup \(k)", v) }
        print("errors: \(detail.total) (\(detail.text))")
        print("generator: \(Fmt.f(cpu, 2)) s cpu")
        let passed = fatal == nil && connected == o.online && rounds.count == o.rounds
            && rounds.allSatisfy { $0.status == 201 && $0.delivered == o.online } && detail.total == 0
        print("result: \(passed ? "PASS" : "FAIL")")

        var j = JSONObject()
        j["scenario"] = "broadcast"
        j["online"] = .int(Int64(o.online))
        j["connected"] = .int(Int64(connected))
        j["setup_s"] = Fmt.round(setupSeconds, 3)
        j["rounds"] = .array(rounds.map { r in
            var o = JSONObject()
            o["status"] = .int(Int64(r.status))
            o["delivered"] = .int(Int64(r.delivered))
            o["delivered_live"] = .int(r.deliveredLive)
            o["answer_ms"] = r.answerMicros.map { Fmt.round(Fmt.ms($0), 3) } ?? .null
            o["all_ms"] = r.allMicros.map { Fmt.round(Fmt.ms($0), 3) } ?? .null
            o["p50_ms"] = Fmt.round(Fmt.ms(r.latency.percentile(50)), 3)
            o["p99_ms"] = Fmt.round(Fmt.ms(r.latency.percentile(99)), 3)
            o["max_ms"] = Fmt.round(Fmt.ms(r.latency.max), 3)
            return .object(o)
        })
        j["all_ms_median"] = median.map { Fmt.round($0, 3) } ?? .null
        j["delivered_min"] = .int(Int64(deliveredMin))
        j["errors"] = .int(Int64(detail.total))
        j["error_detail"] = detail.json
        j["generator_cpu_s"] = Fmt.round(cpu, 2)
        j["passed"] = .bool(passed)
        print(JSON.object(j).text)
        return passed
    }

    // MARK: WebSocketDelegate

    func webSocketOpened(_ index: Int) {}

    func webSocket(_ index: Int, text: UnsafeRawBufferPointer) {
        if !ready[index] {
            // The URL token's auth reply (id null) is the first frame.
            guard case .reply(let r) = FieldScanner.decode(text), r.id == -1 else { return }
            guard r.ok else {
                setupFailures.add("auth: \(r.errorCode)")
                pool.settle(index)
                return pool.close(index)
            }
            ready[index] = true
            live += 1
            pool.settle(index)
            return
        }
        guard FieldScanner.hasPrefix(text, Self.pushPrefix) else { return }
        guard let at = FieldScanner.find(Self.bodyKey, in: text, from: Self.pushPrefix.count),
              let r = FieldScanner.integer(text, at: at + Self.bodyKey.count) else { return errors.add("broadcast push not ours") }
        guard Int(r) == round, roundOpen else { return errors.add("broadcast push of round \(r) after its round ended") }
        guard gotRound[index] != round else { return errors.add("broadcast push read twice") }
        gotRound[index] = round
        let now = Clock.nanos()
        current.latency.record(nanos: now - posted)
        current.delivered += 1
        if current.delivered == live && current.allMicros == nil { current.allMicros = (now - posted) / 1000 }
    }

    func webSocketClosed(_ index: Int, reason: String) {
        if ready[index] {
            errors.add("connection closed: \(reason)")
            ready[index] = false
            live -= 1
        } else {
            setupFailures.add(reason)
            pool.settle(index)
        }
    }
}
