import Foundation
import Glibc
import Protocol

// The figures of one `chat` run, and how they are printed: a table for people, then one JSON
// object as the last line for scripts.
struct ChatStats {
    var parser = ""
    var textBytes = 0
    var connections = 0
    var connectionsReady = 0
    var activeConversations = 0
    var setupSeconds = 0.0
    var wallStart: UInt64 = 0
    var sendStart: UInt64 = 0
    var sendEnd: UInt64 = 0
    var drainEnd: UInt64 = 0

    var sent = 0
    var acked: Int64 = 0
    var ackedInWindow: Int64 = 0
    var delivered: Int64 = 0
    var deliveredInWindow: Int64 = 0
    var echoes: Int64 = 0
    var otherPushes: Int64 = 0
    var ack = Histogram()
    var delivery = Histogram()

    var lost: Int64 = 0
    var duplicated: Int64 = 0
    var outOfOrder: Int64 = 0
    /// Every error by kind (error replies by code, closes by reason, unanswered sends, ...).
    var errors: [String: Int] = [:]
    var setupFailures: [String: Int] = [:]
    var fatal: String?

    mutating func count(error kind: String, _ n: Int = 1) { errors[kind, default: 0] += n }
    mutating func count(setupFailure kind: String) { setupFailures[kind, default: 0] += 1 }

    var errorTotal: Int { errors.values.reduce(0, +) + setupFailures.values.reduce(0, +) }
    var sendSeconds: Double { sendEnd > sendStart ? Clock.seconds(sendEnd - sendStart) : 0 }
    var acksPerSecond: Double { sendSeconds > 0 ? Double(ackedInWindow) / sendSeconds : 0 }
    var deliveriesPerSecond: Double { sendSeconds > 0 ? Double(deliveredInWindow) / sendSeconds : 0 }
    var passed: Bool { fatal == nil && lost == 0 && duplicated == 0 && outOfOrder == 0 && errorTotal == 0 }
}

enum CPUTime {
    /// User + system seconds this process has used.
    static func used() -> Double {
        var u = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6
            + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }
}

struct ChatReport {
    let o: ChatOptions
    let s: ChatStats
    let cpuSeconds: Double

    func printAll() {
        print(table())
        print(json())
    }

    private func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
    private func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }

    func table() -> String {
        var out: [String] = []
        let wall = Clock.seconds(s.drainEnd - s.wallStart)
        out.append("hub-load chat: \(o.conversations) conversations (\(2 * o.conversations) connections) on ws://\(o.host):\(o.port)\(o.path), "
            + "window \(o.window), \(f(o.duration)) s, text \(o.textBytes) B, parser \(o.parser.rawValue)")
        out.append("setup: \(s.connectionsReady)/\(s.connections) connections ready, \(s.activeConversations) conversations active, in \(f(s.setupSeconds, 2)) s")
        if let fatal = s.fatal { out.append("FATAL: \(fatal)") }
        out.append("sending: \(f(s.sendSeconds, 2)) s; drain: \(f(Clock.seconds(s.drainEnd > s.sendEnd ? s.drainEnd - s.sendEnd : 0), 2)) s")
        out.append("")
        out.append("               total     per second (while sending)")
        out.append("sent      \(pad("\(s.sent)", 10))")
        out.append("acks      \(pad("\(s.acked)", 10))   \(pad(f(s.acksPerSecond), 12))")
        out.append("deliveries\(pad("\(s.delivered)", 10))   \(pad(f(s.deliveriesPerSecond), 12))")
        out.append("")
        out.append("latency µs      p50      p90      p99    p99.9      max     mean")
        for (name, h) in [("ack     ", s.ack), ("delivery", s.delivery)] {
            let cols = [h.percentile(50), h.percentile(90), h.percentile(99), h.percentile(99.9), h.max]
            out.append("\(name)" + cols.map { pad("\($0)", 9) }.joined() + pad(f(h.mean), 9))
        }
        out.append("")
        out.append("checks: lost \(s.lost), duplicated \(s.duplicated), out-of-order \(s.outOfOrder)")
        var detail = s.errors.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        detail += s.setupFailures.sorted { $0.key < $1.key }.map { "setup \($0.key): \($0.value)" }
        out.append("errors: \(s.errorTotal)" + (detail.isEmpty ? "" : " (" + detail.joined(separator: "; ") + ")"))
        out.append("generator: \(f(cpuSeconds, 2)) s cpu over \(f(wall, 2)) s wall (\(f(wall > 0.05 ? 100 * cpuSeconds / wall : 0, 0)) % of one core); "
            + "own-message pushes on senders \(s.echoes), other pushes \(s.otherPushes)")
        out.append("result: \(s.passed ? "PASS" : "FAIL")")
        return out.joined(separator: "\n")
    }

    func json() -> String {
        func hist(_ h: Histogram, full: Bool) -> JSON {
            var o = JSONObject()
            o["p50"] = .int(Int64(h.percentile(50)))
            if full { o["p90"] = .int(Int64(h.percentile(90))) }
            o["p99"] = .int(Int64(h.percentile(99)))
            if full { o["p99_9"] = .int(Int64(h.percentile(99.9))) }
            o["max"] = .int(Int64(h.max))
            o["mean"] = .double((h.mean * 10).rounded() / 10)
            o["count"] = .int(Int64(h.count))
            return .object(o)
        }
        var j = JSONObject()
        j["scenario"] = "chat"
        j["url"] = .string("ws://\(o.host):\(o.port)\(o.path)")
        j["conversations"] = .int(Int64(o.conversations))
        j["connections"] = .int(Int64(s.connections))
        j["connections_ready"] = .int(Int64(s.connectionsReady))
        j["window"] = .int(Int64(o.window))
        j["duration_s"] = .double(o.duration)
        j["text_bytes"] = .int(Int64(o.textBytes))
        j["parser"] = .string(o.parser.rawValue)
        j["setup_s"] = .double((s.setupSeconds * 1000).rounded() / 1000)
        j["send_s"] = .double((s.sendSeconds * 1000).rounded() / 1000)
        j["sent"] = .int(Int64(s.sent))
        j["acked"] = .int(s.acked)
        j["delivered"] = .int(s.delivered)
        j["acks_per_s"] = .double(s.acksPerSecond.rounded())
        j["deliveries_per_s"] = .double(s.deliveriesPerSecond.rounded())
        j["ack_us"] = hist(s.ack, full: true)
        j["delivery_us"] = hist(s.delivery, full: true)
        j["lost"] = .int(s.lost)
        j["duplicated"] = .int(s.duplicated)
        j["out_of_order"] = .int(s.outOfOrder)
        j["errors"] = .int(Int64(s.errorTotal))
        var detail = JSONObject()
        for (k, v) in s.errors.sorted(by: { $0.key < $1.key }) { detail[k] = .int(Int64(v)) }
        for (k, v) in s.setupFailures.sorted(by: { $0.key < $1.key }) { detail["setup: " + k] = .int(Int64(v)) }
        j["error_detail"] = .object(detail)
        j["generator_cpu_s"] = .double((cpuSeconds * 100).rounded() / 100)
        j["passed"] = .bool(s.passed)
        return JSON.object(j).text
    }
}
