import Foundation
import Protocol

// Scenario `fanout`: one conversation, many readers. --subscribers connections of client f0
// all subscribe to conv:website:f0 (a client may always use its own conversation), and
// --publishers further connections of f0 send real `send` ops to it (stored durably, then
// pushed to every subscriber): open loop at --rate sends/s in total, or with --rate 0 closed
// loop, each publisher keeping --window sends in flight (a send completes with its `ok`; the
// publisher does not wait for deliveries). Every subscriber checks that each seq arrives
// once, in order, with no gap; delivery latency comes from the send time in the text.
// --stuck N adds N more subscribers that stop reading once subscribed, with a 4 KiB receive
// buffer (slow consumers): the hub must cut each one off (4009, or a reset when even that
// cannot be written) while the readers keep up; compare their p99 with a run without them.
struct FanoutOptions {
    var common = CommonOptions()
    var subscribers = 1_000
    var publishers = 1
    var rate = 0
    var window = 4
    var duration = 10.0
    var drain = 3.0
    var textBytes = 100
    var stuck = 0
    var timeline = false
    /// How long after the drain the stuck subscribers may take to be cut off (seconds).
    static let stuckWait = 15.0
    static let stuckReceiveBuffer: Int32 = 4_096
    /// The timeline covers the first 60 s of sending: a histogram (~20 KB) per 100 ms.
    static let timelineWindows = 600

    static let user = "f0"
    static let channel = "conv:website:f0"

    static let usage = """
    usage: hub-load fanout --url ws://127.0.0.1:PORT/ws (--data DIR | --jwt-secret S) [options]
      --subscribers N     connections of client f0 subscribed to conv:website:f0 (default 1000)
      --publishers P      connections of f0 sending to it (default 1)
      --rate R            sends per second in total, open loop; 0 = closed loop (default 0)
      --window W          closed loop: sends in flight per publisher, 1-256 (default 4)
      --duration S        seconds of sending (default 10)
      --drain S           after sending, seconds to wait for outstanding acks and pushes (default 3)
      --text-bytes N      message text length, 32-8000 (default 100)
      --timeline          also print delivery p99 and max per 100 ms of sending (by send time;
                          the first 60 s)
      --stuck N           more subscribers that never read after subscribing, 4 KiB receive
                          buffer; each must be ended by the hub within 15 s of the drain (default 0)
      (the hub must allow subscribers + publishers connections per user: --max-connections-per-user)
    """

    static func parse(_ args: ArraySlice<String>) throws(UsageError) -> FanoutOptions {
        var o = FanoutOptions()
        o.common = try CommonOptions.parse(args, usage: usage) { flag, f throws(UsageError) -> Bool in
            switch flag {
            case "--subscribers": o.subscribers = try f.int(flag, 1...1_000_000)
            case "--publishers": o.publishers = try f.int(flag, 1...1_000)
            case "--rate": o.rate = try f.int(flag, 0...10_000_000)
            // The hub answers `rate_limited` past 256 unanswered store ops on one connection.
            case "--window": o.window = try f.int(flag, 1...256)
            case "--duration": o.duration = try f.seconds(flag, 0.1...3600)
            case "--drain": o.drain = try f.seconds(flag, 0...600)
            case "--text-bytes": o.textBytes = try f.int(flag, 32...8000)
            case "--stuck": o.stuck = try f.int(flag, 0...100_000)
            case "--timeline": o.timeline = true
            default: return false
            }
            return true
        }
        return o
    }
}

final class FanoutScenario: WebSocketDelegate {
    private enum Stage { case connecting, subscribing, ready, failed }
    private enum Phase { case setup, sending, draining }

    private struct Publisher {
        var nextRequestID: Int64 = 10
        var inFlightIDs: [Int64] = []
        var inFlightTimes: [UInt64] = []
        var sent: Int64 = 0
    }

    private let o: FanoutOptions
    private let pool: ClientPool
    private var stages: [Stage]
    private var authed: [Bool]
    private var trackers: [SeqTracker]
    private var publishers: [Publisher]
    private let encoders: [SendEncoder]
    private var request: [UInt8] = []
    private var phase = Phase.setup

    private var sends = 0
    private var acked = 0
    private var ackedInWindow = 0
    private var deliveries = 0
    private var deliveriesInWindow = 0
    private var maxAckedSeq: Int64 = 0
    private var ack = Histogram()
    private var delivery = Histogram()
    /// Delivery latency by when the message was sent: one histogram per 100 ms of sending.
    private var deliveryBySendTime: [Histogram] = []
    private var sendStartNanos: UInt64 = 0
    static let timelineStep: UInt64 = 100_000_000
    private var errors = Tally()
    private var setupFailures = Tally()
    private var otherPushes = 0

    init(options: FanoutOptions, secret: String) {
        o = options
        let n = options.subscribers + options.publishers + options.stuck
        let base = options.common.url.path
        // One token for every connection: they are all user f0.
        let path = Tokens.clientPath(base, user: FanoutOptions.user, secret: secret)
        let firstStuck = options.subscribers + options.publishers
        pool = ClientPool(count: n, common: options.common, path: { _ in path },
                          receiveBuffer: { $0 >= firstStuck ? FanoutOptions.stuckReceiveBuffer : nil })
        stages = Array(repeating: .connecting, count: n)
        authed = Array(repeating: false, count: n)
        trackers = Array(repeating: SeqTracker(), count: options.subscribers)
        publishers = Array(repeating: Publisher(), count: options.publishers)
        let runID = SendEncoder.newRunID()
        encoders = (0..<options.publishers).map {
            SendEncoder(channel: FanoutOptions.channel, runID: runID, sender: $0, textBytes: options.textBytes)
        }
        request.reserveCapacity(options.textBytes + 256)
    }

    private func isPublisher(_ i: Int) -> Bool { i >= o.subscribers && i < o.subscribers + o.publishers }
    private func isStuck(_ i: Int) -> Bool { i >= o.subscribers + o.publishers }
    private var publisherIndices: Range<Int> { o.subscribers..<(o.subscribers + o.publishers) }
    private var stuckIndices: Range<Int> { (o.subscribers + o.publishers)..<stages.count }

    // MARK: run

    func run() -> Bool {
        let cpuBefore = CPUTime.used()
        let t0 = Clock.nanos()
        _ = pool.openAll(self, timeout: o.common.timeout)
        for i in stages.indices where stages[i] == .connecting || stages[i] == .subscribing {
            fail(i, "not ready within --timeout \(o.common.timeout) s")
        }
        let setupSeconds = Clock.seconds(Clock.nanos() - t0)
        let readySubs = (0..<o.subscribers).count { stages[$0] == .ready }
        let readyPubs = publisherIndices.count { stages[$0] == .ready }
        let readyStuck = stuckIndices.count { stages[$0] == .ready }

        var sendStart: UInt64 = 0, sendEnd: UInt64 = 0, drainEnd: UInt64 = 0
        var fatal: String?
        if readySubs == 0 || readyPubs == 0 {
            fatal = "no \(readySubs == 0 ? "subscriber" : "publisher") finished setup"
        } else {
            (sendStart, sendEnd, drainEnd) = sendAndDrain()
        }
        let (stuckEnded, stuckEndSeconds) = waitForStuckToEnd(after: drainEnd)
        pool.closeAll()

        // Judged on subscribers still open at the end (a connection the hub closed is an error already).
        var top = maxAckedSeq
        for i in trackers.indices where stages[i] == .ready { top = max(top, trackers[i].highest) }
        var expected: Int64 = 0, received: Int64 = 0, lost: Int64 = 0, duplicated = 0, outOfOrder = 0
        for i in trackers.indices where stages[i] == .ready {
            let t = trackers[i]
            expected += top - t.base
            received += t.distinct
            lost += t.missing(upTo: top)
            duplicated += t.duplicates
            outOfOrder += t.outOfOrder
        }
        for p in publishers where !p.inFlightIDs.isEmpty { errors.add("send never answered", p.inFlightIDs.count) }

        let sendSeconds = sendEnd > sendStart ? Clock.seconds(sendEnd - sendStart) : 0
        let acksPerSecond = sendSeconds > 0 ? Double(ackedInWindow) / sendSeconds : 0
        let deliveriesPerSecond = sendSeconds > 0 ? Double(deliveriesInWindow) / sendSeconds : 0
        let errorTotal = errors.total + setupFailures.total
        let passed = fatal == nil && lost == 0 && duplicated == 0 && outOfOrder == 0 && errorTotal == 0
            && stuckEnded == readyStuck
        let cpu = CPUTime.used() - cpuBefore

        let url = o.common.url
        print("hub-load fanout: \(o.subscribers) subscribers + \(o.publishers) publisher\(o.publishers == 1 ? "" : "s") "
            + "(client \(FanoutOptions.user), \(FanoutOptions.channel)) on ws://\(url.host):\(url.port)\(url.path), "
            + (o.rate > 0 ? "open loop \(o.rate) sends/s" : "closed loop, window \(o.window)") + ", \(Fmt.f(o.duration)) s, text \(o.textBytes) B")
        print("setup: \(readySubs)/\(o.subscribers) subscribers and \(readyPubs)/\(o.publishers) publishers ready in \(Fmt.f(setupSeconds, 2)) s"
            + (o.stuck > 0 ? "; \(readyStuck)/\(o.stuck) stuck subscribers" : ""))
        if let fatal { print("FATAL: \(fatal)") }
        print("sending: \(Fmt.f(sendSeconds, 2)) s; drain: \(Fmt.f(drainEnd > sendEnd ? Clock.seconds(drainEnd - sendEnd) : 0, 2)) s")
        print("")
        print("                total     per second (while sending)")
        print("sends      \(Fmt.pad("\(sends)", 10))")
        print("acks       \(Fmt.pad("\(acked)", 10))   \(Fmt.pad(Fmt.f(acksPerSecond), 12))")
        print("deliveries \(Fmt.pad("\(deliveries)", 10))   \(Fmt.pad(Fmt.f(deliveriesPerSecond), 12))")
        print("")
        print("latency µs      p50      p90      p99    p99.9      max     mean")
        for (name, h) in [("ack     ", ack), ("delivery", delivery)] {
            let cols = [h.percentile(50), h.percentile(90), h.percentile(99), h.percentile(99.9), h.max]
            print(name + cols.map { Fmt.pad("\($0)", 9) }.joined() + Fmt.pad(Fmt.f(h.mean), 9))
        }
        print("")
        if o.timeline {
            let ms = { (us: UInt64) in Fmt.f(Double(us) / 1000, 1) }
            print("delivery by send time, per 100 ms (p99/max ms): "
                + deliveryBySendTime.map { "\(ms($0.percentile(99)))/\(ms($0.max))" }.joined(separator: " "))
        }
        print("expected \(expected), received \(received) (subscribers open at the end, up to seq \(top))")
        print("checks: lost \(lost), duplicated \(duplicated), out-of-order \(outOfOrder)")
        if o.stuck > 0 {
            print("stuck: \(stuckEnded) of \(readyStuck) ended by the hub"
                + (stuckEnded == readyStuck ? " (the last \(Fmt.f(stuckEndSeconds, 2)) s after the drain)" : " within \(Fmt.f(FanoutOptions.stuckWait)) s of the drain"))
        }
        var detail = errors
        for (k, v) in setupFailures.counts { detail.add("setup \(k)", v) }
        print("errors: \(errorTotal) (\(detail.text))")
        print("generator: \(Fmt.f(cpu, 2)) s cpu; other pushes \(otherPushes)")
        print("result: \(passed ? "PASS" : "FAIL")")

        var j = JSONObject()
        j["scenario"] = "fanout"
        j["subscribers"] = .int(Int64(o.subscribers))
        j["publishers"] = .int(Int64(o.publishers))
        j["subscribers_ready"] = .int(Int64(readySubs))
        j["publishers_ready"] = .int(Int64(readyPubs))
        j["rate"] = .int(Int64(o.rate))
        j["window"] = .int(Int64(o.window))
        j["text_bytes"] = .int(Int64(o.textBytes))
        j["setup_s"] = Fmt.round(setupSeconds, 3)
        j["send_s"] = Fmt.round(sendSeconds, 3)
        j["sends"] = .int(Int64(sends))
        j["acked"] = .int(Int64(acked))
        j["acks_per_s"] = Fmt.round(acksPerSecond)
        j["deliveries"] = .int(Int64(deliveries))
        j["deliveries_per_s"] = Fmt.round(deliveriesPerSecond)
        j["expected"] = .int(expected)
        j["received"] = .int(received)
        j["lost"] = .int(lost)
        j["duplicated"] = .int(Int64(duplicated))
        j["out_of_order"] = .int(Int64(outOfOrder))
        j["stuck"] = .int(Int64(o.stuck))
        j["stuck_ready"] = .int(Int64(readyStuck))
        j["stuck_ended"] = .int(Int64(stuckEnded))
        j["errors"] = .int(Int64(errorTotal))
        j["error_detail"] = detail.json
        j["ack_us"] = Fmt.histogram(ack)
        j["delivery_us"] = Fmt.histogram(delivery)
        j["generator_cpu_s"] = Fmt.round(cpu, 2)
        j["passed"] = .bool(passed)
        print(JSON.object(j).text)
        return passed
    }

    /// The sending phase, then the drain; returns (send start, send end, drain end).
    private func sendAndDrain() -> (UInt64, UInt64, UInt64) {
        phase = .sending
        let start = Clock.nanos()
        sendStartNanos = start
        let sendEnd = start + UInt64(o.duration * 1e9)
        if o.rate == 0 {
            for p in 0..<o.publishers where stages[o.subscribers + p] == .ready {
                for _ in 0..<o.window { send(p) }
            }
        }
        var now = start
        while now < sendEnd {
            let live = (0..<o.publishers).filter { stages[o.subscribers + $0] == .ready }
            if live.isEmpty { break } // every publisher was closed: nothing left to measure with
            var waitMs: Int32 = 20
            if o.rate > 0 {
                // Open loop: every send due by now goes out, round robin over the live publishers.
                let due = Int(Double(now - start) * Double(o.rate) / 1e9)
                while sends < due { send(live[sends % live.count]) }
                let next = start + UInt64(Double(sends + 1) * 1e9 / Double(o.rate))
                waitMs = next > now ? Int32(min(20, (next - now) / 1_000_000)) : 0
            }
            pool.flush(self)
            pool.turn(timeoutMs: min(waitMs, Int32((sendEnd - now) / 1_000_000) + 1), self)
            now = Clock.nanos()
        }
        let end = now
        phase = .draining
        let drainEnd = end + UInt64(o.drain * 1e9)
        var nextCheck: UInt64 = 0
        while now < drainEnd {
            if now >= nextCheck {
                nextCheck = now + 5_000_000
                if everythingArrived() { break }
            }
            pool.turn(timeoutMs: 5, self)
            now = Clock.nanos()
        }
        return (start, end, now)
    }

    private func recordInTimeline(_ latency: UInt64, sentAt: UInt64) {
        let w = Int((sentAt - sendStartNanos) / Self.timelineStep)
        guard w < FanoutOptions.timelineWindows else { return }
        while deliveryBySendTime.count <= w { deliveryBySendTime.append(Histogram()) }
        deliveryBySendTime[w].record(nanos: latency)
    }

    /// Waits (up to `stuckWait` after the drain) for the hub to end every stuck subscriber;
    /// returns how many it ended and when the last was seen ended (seconds after the drain).
    private func waitForStuckToEnd(after drainEnd: UInt64) -> (Int, Double) {
        let stuck = stuckIndices.filter { stages[$0] == .ready }
        guard !stuck.isEmpty else { return (0, 0) }
        var ended = Set<Int>()
        let deadline = max(drainEnd, Clock.nanos()) + UInt64(FanoutOptions.stuckWait * 1e9)
        var now = Clock.nanos()
        while true {
            for i in stuck where !ended.contains(i) && pool.hasEnded(i) { ended.insert(i) }
            if ended.count == stuck.count || now >= deadline { break }
            pool.turn(timeoutMs: 50, self)
            now = Clock.nanos()
        }
        return (ended.count, now > drainEnd ? Clock.seconds(now - drainEnd) : 0)
    }

    private func everythingArrived() -> Bool {
        for p in publishers where !p.inFlightIDs.isEmpty { return false }
        for i in trackers.indices where stages[i] == .ready && !trackers[i].hasAll(upTo: maxAckedSeq) { return false }
        return true
    }

    private func send(_ p: Int) {
        let id = publishers[p].nextRequestID
        publishers[p].nextRequestID += 1
        let n = publishers[p].sent
        publishers[p].sent += 1
        let t = Clock.nanos()
        encoders[p].encode(into: &request, id: id, n: n, at: t)
        publishers[p].inFlightIDs.append(id)
        publishers[p].inFlightTimes.append(t)
        sends += 1
        pool.send(o.subscribers + p, request)
    }

    private func acknowledged(_ p: Int, _ r: Reply) {
        guard let k = publishers[p].inFlightIDs.firstIndex(of: r.id) else { return errors.add("reply to an unknown id") }
        let sentAt = publishers[p].inFlightTimes[k]
        publishers[p].inFlightIDs.remove(at: k)
        publishers[p].inFlightTimes.remove(at: k)
        ack.record(nanos: Clock.nanos() &- sentAt)
        if r.ok {
            acked += 1
            if phase == .sending { ackedInWindow += 1 }
            if r.duplicate { errors.add("ack with duplicate:true for a fresh client_msg_id") }
            if r.seq <= 0 { errors.add("ack without a seq") }
            maxAckedSeq = max(maxAckedSeq, r.seq)
        } else {
            errors.add("error reply \(r.errorCode)")
        }
        if phase == .sending && o.rate == 0 && stages[o.subscribers + p] == .ready { send(p) }
    }

    private func fail(_ i: Int, _ reason: String) {
        guard stages[i] != .failed && stages[i] != .ready else { return }
        stages[i] = .failed
        setupFailures.add(reason)
        pool.settle(i)
        pool.close(i)
    }

    private func ready(_ i: Int) {
        stages[i] = .ready
        pool.settle(i)
        if isStuck(i) { pool.stopReading(i) } // and never reads again
    }

    // MARK: WebSocketDelegate

    func webSocketOpened(_ index: Int) {
        stages[index] = .subscribing
        if !isPublisher(index) {
            pool.send(index, Array(#"{"id":2,"op":"subscribe","channel":"\#(FanoutOptions.channel)"}"#.utf8))
        }
    }

    func webSocket(_ index: Int, text: UnsafeRawBufferPointer) {
        switch FieldScanner.decode(text) {
        case .message(let seq, let sentAt):
            guard !isPublisher(index) else { return errors.add("message push on a publisher (not subscribed)") }
            guard !isStuck(index) else { return } // read before it stopped reading: not measured
            guard stages[index] == .ready else { return errors.add("message push before the subscribe reply") }
            guard trackers[index].record(seq) else { return }
            deliveries += 1
            if phase == .sending { deliveriesInWindow += 1 }
            if sentAt > 0 {
                let latency = Clock.nanos() &- sentAt
                delivery.record(nanos: latency)
                if o.timeline && sentAt >= sendStartNanos { recordInTimeline(latency, sentAt: sentAt) }
            }
        case .reply(let r):
            if stages[index] == .subscribing {
                setupReply(index, r)
            } else if isPublisher(index) && r.id >= 10 {
                acknowledged(index - o.subscribers, r)
            } else {
                errors.add("unexpected reply (id \(r.id)\(r.ok ? "" : ", " + r.errorCode))")
            }
        case .otherPush:
            otherPushes += 1
        case .invalid:
            errors.add("unparsable frame")
        }
    }

    private func setupReply(_ index: Int, _ r: Reply) {
        if r.id == -1 { // the URL token's auth reply (id null)
            guard r.ok else { return fail(index, "auth: \(r.errorCode)") }
            authed[index] = true
            if isPublisher(index) { ready(index) }
        } else if r.id == 2 && !isPublisher(index) {
            guard r.ok, r.lastSeq >= 0, authed[index] else { return fail(index, "subscribe: \(r.ok ? "before auth" : r.errorCode)") }
            if !isStuck(index) { trackers[index].start(lastSeq: r.lastSeq) }
            ready(index)
        } else {
            errors.add("unexpected reply id \(r.id) during setup")
        }
    }

    func webSocketClosed(_ index: Int, reason: String) {
        if stages[index] == .ready {
            errors.add("connection closed: \(reason)")
            stages[index] = .failed
        } else {
            fail(index, reason)
        }
    }
}
