import Foundation
import Protocol

// Scenario `echo`: the engine alone, without the chat layer. --connections WebSockets to the
// hub's conformance echo route (`--echo-path` on the hub; no token, no ops), each keeping
// --window text messages of --size bytes in flight: every echo read sends the next one.
// Measured: echoed messages per second and the round-trip time (message queued → its echo
// read). The echo route answers in order, so each connection keeps its send times in a FIFO.
struct EchoOptions {
    var common = CommonOptions()
    var path = "/echo"
    var connections = 100
    var window = 1
    var size = 64
    var duration = 10.0
    var drain = 2.0

    static let usage = """
    usage: hub-load echo --url ws://127.0.0.1:PORT [options]   (the hub started with --echo-path /echo)
      --path P            the hub's echo route; the path of --url is not used (default /echo)
      --connections C     connections (default 100)
      --window W          messages in flight per connection, 1-1024 (default 1)
      --size N            text message size in bytes, 1-1048576 (default 64)
      --duration S        seconds of sending (default 10)
      --drain S           after sending, seconds to wait for the last echoes (default 2)
    """

    static func parse(_ args: ArraySlice<String>) throws(UsageError) -> EchoOptions {
        var o = EchoOptions()
        o.common = try CommonOptions.parse(args, usage: usage) { flag, f throws(UsageError) -> Bool in
            switch flag {
            case "--path":
                o.path = try f.value(flag)
                guard o.path.hasPrefix("/") else { throw UsageError(message: "--path must start with /, got \(o.path)") }
            case "--connections": o.connections = try f.int(flag, 1...1_000_000)
            case "--window": o.window = try f.int(flag, 1...1024)
            // The hub's default --max-message is 1 MiB.
            case "--size": o.size = try f.int(flag, 1...1_048_576)
            case "--duration": o.duration = try f.seconds(flag, 0.1...3600)
            case "--drain": o.drain = try f.seconds(flag, 0...600)
            default: return false
            }
            return true
        }
        return o
    }
}

final class EchoScenario: WebSocketDelegate {
    private let o: EchoOptions
    private let pool: ClientPool
    private let payload: [UInt8]
    private var ready: [Bool]
    private var sending = false
    /// Send times of the messages in flight: connection i owns slots i*window ..< (i+1)*window,
    /// a ring starting at head[i] holding inFlight[i] of them.
    private var times: [UInt64]
    private var head: [Int]
    private var inFlight: [Int]

    private var sent = 0
    private var echoes = 0
    private var echoesInWindow = 0
    private var rtt = Histogram()
    private var errors = Tally()
    private var setupFailures = Tally()

    init(options: EchoOptions) {
        o = options
        let path = options.path
        pool = ClientPool(count: options.connections, common: options.common) { _ in path }
        payload = Array(repeating: UInt8(ascii: "x"), count: options.size)
        ready = Array(repeating: false, count: options.connections)
        times = Array(repeating: 0, count: options.connections * options.window)
        head = Array(repeating: 0, count: options.connections)
        inFlight = Array(repeating: 0, count: options.connections)
    }

    func run() -> Bool {
        let cpuBefore = CPUTime.used()
        let t0 = Clock.nanos()
        for _ in pool.openAll(self, timeout: o.common.timeout) {
            setupFailures.add("not open within --timeout \(o.common.timeout) s")
        }
        let setupSeconds = Clock.seconds(Clock.nanos() - t0)
        let connected = ready.count { $0 }

        sending = true
        let start = Clock.nanos()
        let sendEnd = start + UInt64(o.duration * 1e9)
        for i in ready.indices where ready[i] { for _ in 0..<o.window { send(i) } }
        var now = start
        while now < sendEnd && connected > 0 {
            pool.turn(timeoutMs: Int32(min(20, (sendEnd - now) / 1_000_000 + 1)), self)
            now = Clock.nanos()
        }
        sending = false
        let end = now
        let drainEnd = end + UInt64(o.drain * 1e9)
        while now < drainEnd && inFlight.contains(where: { $0 > 0 }) {
            pool.turn(timeoutMs: 5, self)
            now = Clock.nanos()
        }
        pool.closeAll()
        let unanswered = zip(ready, inFlight).reduce(0) { $0 + ($1.0 ? $1.1 : 0) }
        if unanswered > 0 { errors.add("echo never came back", unanswered) }

        let sendSeconds = Clock.seconds(end - start)
        let rate = sendSeconds > 0 ? Double(echoesInWindow) / sendSeconds : 0
        let errorTotal = errors.total + setupFailures.total
        let passed = connected == o.connections && errorTotal == 0
        let cpu = CPUTime.used() - cpuBefore

        print("hub-load echo: \(o.connections) connections to ws://\(o.common.url.host):\(o.common.url.port)\(o.path), "
            + "window \(o.window), \(o.size) B text messages, \(Fmt.f(o.duration)) s")
        print("setup: \(connected)/\(o.connections) open in \(Fmt.f(setupSeconds, 2)) s")
        print("sent \(sent), echoed \(echoes); \(Fmt.f(rate)) echoes/s while sending (\(Fmt.f(sendSeconds, 2)) s)")
        print("rtt µs p50 / p90 / p99 / p99.9 / max: \(Fmt.percentiles(rtt)) (mean \(Fmt.f(rtt.mean)))")
        var detail = errors
        for (k, v) in setupFailures.counts { detail.add("setup \(k)", v) }
        print("errors: \(errorTotal) (\(detail.text))")
        print("generator: \(Fmt.f(cpu, 2)) s cpu")
        print("result: \(passed ? "PASS" : "FAIL")")

        var j = JSONObject()
        j["scenario"] = "echo"
        j["path"] = .string(o.path)
        j["connections"] = .int(Int64(o.connections))
        j["connected"] = .int(Int64(connected))
        j["window"] = .int(Int64(o.window))
        j["size"] = .int(Int64(o.size))
        j["send_s"] = Fmt.round(sendSeconds, 3)
        j["sent"] = .int(Int64(sent))
        j["echoed"] = .int(Int64(echoes))
        j["msgs_per_s"] = Fmt.round(rate)
        j["rtt_us"] = Fmt.histogram(rtt)
        j["errors"] = .int(Int64(errorTotal))
        j["error_detail"] = detail.json
        j["generator_cpu_s"] = Fmt.round(cpu, 2)
        j["passed"] = .bool(passed)
        print(JSON.object(j).text)
        return passed
    }

    private func send(_ i: Int) {
        guard inFlight[i] < o.window else { return }
        times[i * o.window + (head[i] + inFlight[i]) % o.window] = Clock.nanos()
        inFlight[i] += 1
        sent += 1
        pool.send(i, payload)
    }

    // MARK: WebSocketDelegate

    func webSocketOpened(_ index: Int) {
        ready[index] = true
        pool.settle(index)
    }

    func webSocket(_ index: Int, text: UnsafeRawBufferPointer) {
        guard inFlight[index] > 0 else { return errors.add("echo of nothing sent") }
        let sentAt = times[index * o.window + head[index]]
        head[index] = (head[index] + 1) % o.window
        inFlight[index] -= 1
        rtt.record(nanos: Clock.nanos() &- sentAt)
        echoes += 1
        if text.count != o.size { errors.add("echo of \(text.count) bytes for \(o.size)") }
        if sending {
            echoesInWindow += 1
            send(index)
        }
    }

    func webSocketClosed(_ index: Int, reason: String) {
        if ready[index] {
            errors.add("connection closed: \(reason)")
            ready[index] = false
            inFlight[index] = 0
        } else {
            setupFailures.add(reason)
            pool.settle(index)
        }
    }
}
