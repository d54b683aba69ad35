import CLinux
import Foundation
import Glibc

// Scenario `chat`: N client conversations conv:<service>:c<i>. Each has two connections of the
// same client user c<i>, both subscribed: connection 2i sends (keeping `window` sends in flight)
// and connection 2i+1 only receives. Measured: ack latency (send written → `ok` reply read) and
// delivery latency (send → `message` push read on the receiving connection), and on every
// subscribed connection that each seq arrives once, in order, with no gap.
//
// Phases, each bounded in time: setup (connect, upgrade, auth, subscribe; --setup-timeout),
// sending (--duration or --max-messages), draining (outstanding acks and pushes; --drain),
// then every connection is closed. One thread, one epoll loop.
final class ChatScenario: WebSocketDelegate {
    enum Phase { case setup, sending, draining, done }

    private struct Peer {
        enum Stage { case connecting, authenticating, subscribing, ready, failed }
        var stage = Stage.connecting
        var tracker = SeqTracker()
    }

    private struct Conversation {
        let number: Int
        let encoder: SendEncoder
        var active = false
        var nextRequestID: Int64 = 10
        var inFlightIDs: [Int64] = []
        var inFlightTimes: [UInt64] = []
        var sent: Int64 = 0
        var maxAckedSeq: Int64 = 0
    }

    private let o: ChatOptions
    private let secret: String
    private let poller = Poller()
    private var conns: [WebSocketConnection?] = []
    private var peers: [Peer] = []
    private var convs: [Conversation] = []
    private var toFlush: [Int] = []
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
    private var request: [UInt8] = []
    private let decode: (UnsafeRawBufferPointer) -> Inbound

    private(set) var phase = Phase.setup
    private var now: UInt64 = 0
    private(set) var stats = ChatStats()
    private var settled = 0
    /// Conversations whose two connections are both still open.
    private var live = 0

    init(options: ChatOptions, secret: String) {
        o = options
        self.secret = secret
        // Unique per run, so client_msg_ids never collide with an earlier run on the same data.
        let runID = SendEncoder.newRunID()
        if options.parser == .scan {
            decode = { FieldScanner.decode($0) }
        } else {
            decode = { FullParser.decode($0) }
        }
        stats.parser = options.parser.rawValue
        stats.textBytes = options.textBytes
        for i in 0..<options.conversations {
            let channel = "conv:\(options.service):c\(i)"
            convs.append(Conversation(number: i,
                                      encoder: SendEncoder(channel: channel, runID: runID, sender: i, textBytes: options.textBytes)))
        }
        request.reserveCapacity(options.textBytes + 256)
    }

    deinit { scratch.deallocate() }

    private func channel(_ conv: Int) -> String { "conv:\(o.service):c\(conv)" }

    // MARK: run

    func run() -> ChatStats {
        let t0 = Clock.nanos()
        now = t0
        stats.wallStart = t0
        let setupDeadline = t0 + UInt64(o.setupTimeout * 1e9)
        for i in 0..<(2 * o.conversations) {
            var err: Int32 = 0
            let c = WebSocketConnection(index: i, host: o.host, port: o.ports[i % o.ports.count], path: o.path, poller: poller, failure: &err)
            conns.append(c)
            peers.append(Peer())
            if c == nil { setupFailed(i, "socket: \(String(cString: strerror(err)))") }
        }
        var sendDeadline: UInt64 = .max
        var drainDeadline: UInt64 = .max
        var nextDrainCheck: UInt64 = 0
        while phase != .done {
            let deadline: UInt64 = phase == .setup ? setupDeadline : phase == .sending ? sendDeadline : drainDeadline
            let waitMs = deadline > now ? min(100, Int32((deadline - now) / 1_000_000) + 1) : 0
            poller.wait(timeoutMs: waitMs) { token, events in
                guard let c = conns[Int(token)] else { return }
                c.handle(events, scratch: scratch, self)
            }
            flushAll()
            now = Clock.nanos()
            switch phase {
            case .setup:
                if settled == peers.count || now >= setupDeadline {
                    finishSetup()
                    guard stats.activeConversations > 0 else {
                        stats.fatal = "no conversation finished setup"
                        phase = .done
                        break
                    }
                    startSending()
                    sendDeadline = now + UInt64(o.duration * 1e9)
                }
            case .sending:
                if now >= sendDeadline || stats.sent >= o.maxMessages || live == 0 {
                    stopSending()
                    drainDeadline = now + UInt64(o.drain * 1e9)
                }
            case .draining:
                if now >= drainDeadline {
                    phase = .done
                } else if now >= nextDrainCheck {
                    nextDrainCheck = now + 5_000_000
                    if everythingArrived() { phase = .done }
                }
            case .done:
                break
            }
        }
        stats.drainEnd = now
        finish()
        return stats
    }

    private func flushAll() {
        guard !toFlush.isEmpty else { return }
        for i in toFlush { conns[i]?.flush(self) }
        toFlush.removeAll(keepingCapacity: true)
    }

    private func queue(_ i: Int, _ bytes: [UInt8]) {
        guard let c = conns[i] else { return }
        if bytes.withUnsafeBytes({ c.queueText($0) }) { toFlush.append(i) }
    }

    // MARK: setup

    func webSocketOpened(_ index: Int) {
        let token = Tokens.client("c\(index / 2)", secret: secret)
        queue(index, Array(#"{"id":1,"op":"auth","token":"\#(token)"}"#.utf8))
        peers[index].stage = .authenticating
    }

    private func setupReply(_ index: Int, _ r: Reply) {
        switch (peers[index].stage, r.id) {
        case (.authenticating, 1):
            guard r.ok else { return setupFailed(index, "auth: \(r.errorCode)") }
            queue(index, Array(#"{"id":2,"op":"subscribe","channel":"\#(channel(index / 2))"}"#.utf8))
            peers[index].stage = .subscribing
        case (.subscribing, 2):
            guard r.ok, r.lastSeq >= 0 else { return setupFailed(index, "subscribe: \(r.errorCode)") }
            peers[index].tracker.start(lastSeq: r.lastSeq)
            peers[index].stage = .ready
            settled += 1
        default:
            stats.count(error: "unexpected reply id \(r.id) during setup")
        }
    }

    private func setupFailed(_ index: Int, _ why: String) {
        guard peers[index].stage != .failed else { return }
        if peers[index].stage == .ready { settled -= 1 }
        peers[index].stage = .failed
        settled += 1
        stats.count(setupFailure: why)
        conns[index]?.close()
    }

    private func finishSetup() {
        for i in peers.indices where peers[i].stage != .ready && peers[i].stage != .failed {
            setupFailed(i, "not ready within --setup-timeout \(o.setupTimeout) s")
        }
        for c in convs.indices {
            let ready = peers[2 * c].stage == .ready && peers[2 * c + 1].stage == .ready
            convs[c].active = ready
            if ready {
                stats.activeConversations += 1
                live += 1
            } else {
                // Half a conversation measures nothing: close what is left of it.
                conns[2 * c]?.close()
                conns[2 * c + 1]?.close()
            }
        }
        stats.connectionsReady = peers.count { $0.stage == .ready }
        stats.connections = peers.count
        stats.setupSeconds = Clock.seconds(now - stats.wallStart)
    }

    // MARK: sending

    private func startSending() {
        phase = .sending
        stats.sendStart = now
        for c in convs.indices where convs[c].active {
            for _ in 0..<o.window { if !send(c) { break } }
        }
        flushAll()
    }

    private func stopSending() {
        phase = .draining
        stats.sendEnd = now
    }

    /// Sends the next message of conversation `c`; false when the cap is reached.
    @discardableResult
    private func send(_ c: Int) -> Bool {
        guard stats.sent < o.maxMessages else { return false }
        let id = convs[c].nextRequestID
        convs[c].nextRequestID += 1
        let n = convs[c].sent
        convs[c].sent += 1
        let t = Clock.nanos()
        convs[c].encoder.encode(into: &request, id: id, n: n, at: t)
        convs[c].inFlightIDs.append(id)
        convs[c].inFlightTimes.append(t)
        stats.sent += 1
        queue(2 * c, request)
        return true
    }

    private func ack(_ c: Int, _ r: Reply) {
        guard let k = convs[c].inFlightIDs.firstIndex(of: r.id) else {
            stats.count(error: "reply to an unknown id")
            return
        }
        let sentAt = convs[c].inFlightTimes[k]
        convs[c].inFlightIDs.remove(at: k)
        convs[c].inFlightTimes.remove(at: k)
        stats.ack.record(nanos: now &- sentAt)
        if r.ok {
            stats.acked += 1
            if phase == .sending { stats.ackedInWindow += 1 }
            if r.duplicate { stats.count(error: "ack with duplicate:true for a fresh client_msg_id") }
            if r.seq > convs[c].maxAckedSeq { convs[c].maxAckedSeq = r.seq }
            if r.seq <= 0 { stats.count(error: "ack without a seq") }
        } else {
            stats.count(error: "error reply \(r.errorCode)")
        }
        if phase == .sending && convs[c].active {
            send(c)
        }
    }

    // MARK: inbound

    func webSocket(_ index: Int, text: UnsafeRawBufferPointer) {
        now = Clock.nanos()
        switch decode(text) {
        case .message(let seq, let sentAt):
            guard peers[index].stage == .ready else { return }
            let fresh = peers[index].tracker.record(seq)
            if index & 1 == 1 {
                guard fresh else { return }
                stats.delivered += 1
                if phase == .sending { stats.deliveredInWindow += 1 }
                if sentAt > 0 { stats.delivery.record(nanos: now &- sentAt) }
            } else {
                stats.echoes += 1
            }
        case .reply(let r):
            if r.id == 1 || r.id == 2 {
                setupReply(index, r)
            } else if r.id >= 10 && index & 1 == 0 {
                ack(index / 2, r)
            } else {
                stats.count(error: "unexpected reply (id \(r.id)\(r.ok ? "" : ", " + r.errorCode))")
            }
        case .otherPush:
            stats.otherPushes += 1
        case .invalid:
            stats.count(error: "unparsable frame")
        }
    }

    func webSocketClosed(_ index: Int, reason: String) {
        conns[index] = nil
        switch peers[index].stage {
        case .failed:
            return
        case .ready where phase != .setup:
            stats.count(error: "connection closed: \(reason)")
            if convs[index / 2].active { live -= 1 }
            convs[index / 2].active = false
        default:
            setupFailed(index, reason)
        }
    }

    // MARK: end

    private func everythingArrived() -> Bool {
        for c in convs where c.active {
            if !c.inFlightIDs.isEmpty { return false }
            if !peers[2 * c.number + 1].tracker.hasAll(upTo: c.maxAckedSeq) { return false }
            if !peers[2 * c.number].tracker.hasAll(upTo: c.maxAckedSeq) { return false }
        }
        return true
    }

    private func finish() {
        for c in convs {
            if !c.inFlightIDs.isEmpty { stats.count(error: "send never answered", c.inFlightIDs.count) }
            // Only connections still open are judged: a closed one is already an error, and a
            // real client would resubscribe with `since`.
            for i in [2 * c.number, 2 * c.number + 1] where conns[i]?.state == .open && peers[i].stage == .ready {
                let t = peers[i].tracker
                stats.lost += t.missing(upTo: c.maxAckedSeq)
                stats.duplicated += Int64(t.duplicates)
                stats.outOfOrder += Int64(t.outOfOrder)
            }
        }
        for i in conns.indices { conns[i]?.close(); conns[i] = nil }
    }
}

enum Digits {
    /// Appends the decimal digits of `v`.
    @inline(__always)
    static func append(_ v: Int64, to out: inout [UInt8]) {
        if v < 0 {
            out.append(UInt8(ascii: "-"))
            return append(v == .min ? .max : -v, to: &out)
        }
        if v < 10 { out.append(UInt8(48 + v)); return }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0) // 24 bytes of room
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &tmp) { b in
            while x > 0 { b[23 - n] = UInt8(48 + x % 10); x /= 10; n += 1 }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[(24 - n)...]))
        }
    }
}
