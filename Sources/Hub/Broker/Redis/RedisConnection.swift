import CLinux
import Core
import Glibc
import Protocol

// One connection to one Redis instance, driven by one event loop (a `LoopSocket`): a
// non-blocking connect with a deadline, pipelined commands answered through a FIFO of
// completions, reconnection with jittered backoff, and optional silence detection (PING).
// No thread of its own and no blocking call: everything runs on `loop`'s thread.
//
// Two roles. `.commands`: every reply answers the oldest command in flight. `.subscriber`:
// pub/sub messages and (un)subscribe confirmations arrive unasked; messages go to an
// `InboundRing` drained on a budget each loop turn, confirmations to `onSubscription`.
//
// When the connection is lost every completion in flight fails with `.connectionLost`
// (Redis may or may not have run those commands), commands sent while down between attempts
// fail at once with `.notConnected`, and the next attempt starts after 50 ms → 2 s (doubling,
// jittered). `onUp` runs after each connect and handshake; the owner subscribes again there.
//
// `@unchecked Sendable`: created on any thread, then used only on `loop`'s thread.
final class RedisConnection: LoopSocket, @unchecked Sendable {
    enum Role {
        case commands
        case subscriber(InboundRing.Limits)
    }

    struct Options: Sendable {
        var connectTimeoutMs: Int64 = 2_000
        var backoffMinMs: Int64 = 50
        var backoffMaxMs: Int64 = 2_000
        /// TCP_USER_TIMEOUT: unacknowledged output older than this ends the connection.
        var userTimeoutMs: Int32 = 10_000
        /// Keepalive probes: idle seconds before the first, seconds between, and how many.
        var keepAliveIdle: Int32 = 10
        var keepAliveInterval: Int32 = 5
        var keepAliveCount: Int32 = 3
        /// Reads per readiness event (each up to the loop's read buffer), so one busy
        /// connection cannot starve the loop's other sockets.
        var readsPerEvent = 16
        /// Inbound pub/sub messages handed to `onMessage` per loop turn.
        var drainPerTurn = 1_024
        /// Output not yet taken by the kernel; a command past it fails with `.backlogFull`
        /// instead of growing memory while Redis does not read (silence detection resets such
        /// a connection within seconds; this bounds what piles up meanwhile).
        var maxQueuedOutputBytes = 64 << 20
        /// Silence detection (nil: off). While up, PING when nothing was in flight for `pingIdleMs`;
        /// nothing read for `silentAfterMs` while something is in flight (counted from when it
        /// went out, if later) means a dead route the kernel has not noticed: lost, reconnect.
        var silentAfterMs: Int64?
        var pingIdleMs: Int64 = 1_000
        var limits = RESPLimits()
        init() {}
    }

    typealias Completion = (Result<RESPValue, RedisError>) -> Void

    private enum State { case idle, connecting, handshaking, ready, waiting, closed }

    let endpoint: RedisEndpoint
    /// Sent as CLIENT SETNAME (letters, digits, `-`, `_`, `:` only).
    let name: String
    let options: Options
    unowned let loop: EventLoop
    private let isSubscriber: Bool

    private(set) var fd: Int32 = -1
    private var socketID: LoopSocketID?
    private var state = State.idle
    private var parser: RESPParser
    private var pending = FIFO<Completion?>(keepingCapacity: 256)
    private var out = RedisOutput()
    private var flushScheduled = false
    private var writeInterest = false
    /// Bumped whenever a socket is torn down: a callback that finds it changed stops using
    /// what it read from the old one.
    private var epoch = 0
    private var failedAttempts = 0
    private var connectTimer: TimerID?
    private var retryTimer: TimerID?
    private var drainScheduled = false
    private var ring: InboundRing
    // Silence detection (loop ms): the last read, when the oldest command in flight went out
    // (the moment `pending` stopped being empty), the last PING.
    private var lastReadAt: Int64 = 0
    private var outstandingSince: Int64 = 0
    private var lastPingAt: Int64 = 0
    private var silenceTimer: TimerID?

    /// After each connect + handshake.
    var onUp: ((RedisConnection) -> Void)?
    /// When a connection that was up is lost.
    var onDown: ((RedisConnection) -> Void)?
    /// Subscriber role: one pub/sub message (channel, payload), in arrival order.
    var onMessage: ((RedisConnection, InboundRing.Message) -> Void)?
    /// Subscriber role: `subscribe`/`unsubscribe` confirmations (kind, channel).
    var onSubscription: ((RedisConnection, String, String) -> Void)?
    /// Subscriber role: the inbound ring dropped messages during the last read (the channels
    /// are in `takeDroppedChannels()`).
    var onDropped: ((RedisConnection) -> Void)?

    /// Connection attempts after the first (failed ones included).
    private(set) var reconnects = 0
    /// Commands refused because the output backlog was full.
    private(set) var backlogRefusals = 0
    /// Connections dropped because they stayed silent (`Options.silentAfterMs`).
    private(set) var silentResets = 0
    /// Round trip of the last PING answered (silence detection on), in ms.
    private(set) var lastPingRoundTripMs: Int64?
    /// Just before a silent connection is dropped: how long it was silent (ms).
    var onSilent: ((RedisConnection, Int64) -> Void)?
    var isUp: Bool { state == .ready }
    var droppedTotal: Int { ring.droppedTotal }
    /// Subscriber role: channels subscribed, as Redis counted in its last confirmation (0 while down).
    private(set) var subscriptionCount = 0

    init(endpoint: RedisEndpoint, name: String, role: Role, loop: EventLoop, options: Options = Options()) {
        self.endpoint = endpoint
        self.name = name
        self.loop = loop
        self.options = options
        parser = RESPParser(limits: options.limits)
        switch role {
        case .commands:
            isSubscriber = false
            ring = InboundRing(limits: InboundRing.Limits(maxMessages: 0, maxBytes: 0))
        case .subscriber(let limits):
            isSubscriber = true
            ring = InboundRing(limits: limits)
        }
    }

    // MARK: the owner's calls (loop thread)

    /// Starts the first connection attempt.
    func start() {
        guard state == .idle else { return }
        connect()
    }

    /// Closes for good: completions in flight fail with `.closed`, no reconnect.
    func close() {
        guard state != .closed else { return }
        let wasUp = state == .ready
        tearDown()
        state = .closed
        if let t = retryTimer { loop.cancel(t) }
        failPending(.closed)
        if wasUp { onDown?(self) }
    }

    /// Drops the current connection as if it were lost and reconnects.
    func reconnect() {
        guard state != .closed, state != .idle, state != .waiting else { return }
        lost(.connectionLost, why: "reset by owner")
    }

    /// Queues a command; `completion` gets its reply (an error reply as `.server`).
    func send(_ args: [[UInt8]], _ completion: Completion?) { send(completion) { $0.append(args) } }

    /// Queues the one command `encode` writes into the output (no argument arrays built).
    func send(_ completion: Completion?, encode: (inout RedisOutput) -> Void) {
        guard state == .connecting || state == .handshaking || state == .ready else {
            completion?(.failure(state == .closed ? .closed : .notConnected))
            return
        }
        guard out.unsent < options.maxQueuedOutputBytes else {
            backlogRefusals += 1
            completion?(.failure(.backlogFull))
            return
        }
        encode(&out)
        if pending.isEmpty { outstandingSince = loop.now }
        pending.append(completion)
        scheduleFlush()
    }

    func send(_ args: [String], _ completion: Completion?) { send(completion) { $0.append(args) } }

    /// Subscriber role: SUBSCRIBE / UNSUBSCRIBE, answered through `onSubscription` (one
    /// confirmation per channel, no completion). Ignored while down: `onUp` subscribes again.
    func subscribe(_ channels: [String]) { sendUnanswered("SUBSCRIBE", channels) }
    func unsubscribe(_ channels: [String]) { sendUnanswered("UNSUBSCRIBE", channels) }

    private func sendUnanswered(_ command: String, _ channels: [String]) {
        guard state == .ready, !channels.isEmpty else { return }
        out.append([command] + channels)
        scheduleFlush()
    }

    /// Channels whose messages the inbound ring dropped since the last call.
    func takeDroppedChannels() -> Set<String> { ring.takeDroppedChannels() }

    // MARK: connecting

    private func connect() {
        let o = options
        let s: Int32
        switch Socket.connect(ipv4: endpoint.host, port: endpoint.port, configure: { s in
            Socket.setOption(s, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            Socket.setOption(s, SOL_SOCKET, SO_KEEPALIVE, 1)
            Socket.setOption(s, Int32(IPPROTO_TCP), TCP_KEEPIDLE, o.keepAliveIdle)
            Socket.setOption(s, Int32(IPPROTO_TCP), TCP_KEEPINTVL, o.keepAliveInterval)
            Socket.setOption(s, Int32(IPPROTO_TCP), TCP_KEEPCNT, o.keepAliveCount)
            Socket.setOption(s, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, o.userTimeoutMs)
        }) {
        case .success(let r):
            s = r.fd // connected or connecting: either way the first writable event goes on
        case .failure(let e):
            if failedAttempts & (failedAttempts - 1) == 0 {
                Log.info("redis_connect_failed", ["redis": endpoint.description, "name": name, "reason": e.description,
                                                  "attempt": String(failedAttempts + 1)])
            }
            state = .waiting
            scheduleRetry()
            return
        }
        fd = s
        state = .connecting
        socketID = loop.register(self)
        let myEpoch = epoch
        connectTimer = loop.after(ms: options.connectTimeoutMs) { [weak self] _ in
            guard let self, self.epoch == myEpoch, self.state == .connecting || self.state == .handshaking else { return }
            self.lost(.connectTimeout, why: "connect deadline")
        }
        queueHandshake()
        setWriteInterest(true) // writable = the connect finished (or failed: then EPOLLERR)
    }

    /// AUTH when the URL has a password, then CLIENT SETNAME; ready when the last is answered.
    private func queueHandshake() {
        if let password = endpoint.password {
            let auth = endpoint.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            out.append(auth)
            pending.append { [weak self] r in
                if case .failure(let e) = r { self?.lost(.connectionLost, why: "AUTH refused: \(e)") }
            }
        }
        out.append(["CLIENT", "SETNAME", name])
        let myEpoch = epoch
        pending.append { [weak self] r in
            guard let self, self.epoch == myEpoch else { return }
            if case .failure(.server(let m)) = r {
                Log.error("redis_setname_failed", ["redis": self.endpoint.description, "reason": m])
            }
            guard case .handshaking = self.state else { return }
            self.becameReady()
        }
    }

    private func becameReady() {
        state = .ready
        if let t = connectTimer { loop.cancel(t) }
        connectTimer = nil
        failedAttempts = 0
        if options.silentAfterMs != nil {
            lastReadAt = loop.now
            lastPingAt = loop.now
            watchSilence(epoch: epoch)
        }
        onUp?(self)
    }

    private func watchSilence(epoch myEpoch: Int) {
        guard let silentAfterMs = options.silentAfterMs else { return }
        let checkMs = max(10, min(options.pingIdleMs, silentAfterMs) / 4)
        silenceTimer = loop.after(ms: checkMs) { [weak self] loop in
            guard let self, self.epoch == myEpoch, self.state == .ready else { return }
            let now = loop.now
            let quietMs = now - max(self.lastReadAt, self.outstandingSince)
            if !self.pending.isEmpty && quietMs > silentAfterMs {
                self.silentResets += 1
                self.onSilent?(self, quietMs)
                self.lost(.connectionLost, why: "silent for \(quietMs) ms")
                return
            }
            if self.pending.isEmpty && now - self.lastPingAt >= self.options.pingIdleMs { self.ping() }
            self.watchSilence(epoch: myEpoch)
        }
    }

    /// Answered by `+PONG`, or when subscribed (RESP2) by `["pong", ""]`: not a pub/sub kind, so it answers like any reply.
    private func ping() {
        let sentAt = monotonicMillis()
        lastPingAt = loop.now
        send([Array("PING".utf8)]) { [weak self] r in
            guard let self, case .success = r else { return }
            self.lastPingRoundTripMs = monotonicMillis() - sentAt
        }
    }

    private func scheduleRetry() {
        // Jittered over the upper half of the ceiling: nodes that lost Redis together do not
        // all return in the same millisecond.
        let ceiling = min(options.backoffMaxMs, options.backoffMinMs << min(failedAttempts, 16))
        let delay = Int64.random(in: (ceiling / 2)...max(ceiling / 2, ceiling))
        failedAttempts += 1
        retryTimer = loop.after(ms: delay) { [weak self] _ in
            guard let self, self.state == .waiting else { return }
            self.reconnects += 1
            self.connect()
        }
    }

    /// The connection is gone (or never came): tear down, fail what was in flight, retry later.
    private func lost(_ error: RedisError, why: String) {
        guard state == .connecting || state == .handshaking || state == .ready else { return }
        let wasUp = state == .ready
        // While Redis stays away, log the 1st, 2nd, 4th, 8th… failed attempt, not every one.
        if wasUp || failedAttempts & (failedAttempts - 1) == 0 {
            Log.info(wasUp ? "redis_connection_lost" : "redis_connect_failed",
                     ["redis": endpoint.description, "name": name, "reason": why, "attempt": String(failedAttempts + 1)])
        }
        tearDown()
        state = .waiting
        scheduleRetry()
        failPending(error)
        if wasUp { onDown?(self) }
    }

    private func tearDown() {
        if let id = socketID { loop.unregister(id) }
        socketID = nil
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        epoch += 1
        if let t = connectTimer { loop.cancel(t) }
        connectTimer = nil
        if let t = silenceTimer { loop.cancel(t) }
        silenceTimer = nil
        parser = RESPParser(limits: options.limits)
        out.removeAll()
        writeInterest = false
        subscriptionCount = 0
    }

    private func failPending(_ error: RedisError) {
        var failed = FIFO<Completion?>(keepingCapacity: 0)
        swap(&failed, &pending)
        while let c = failed.popFirst() { c?(.failure(error)) }
    }

    // MARK: LoopSocket

    func onReadable() {
        guard state == .handshaking || state == .ready else { return }
        let myEpoch = epoch
        let droppedBefore = ring.droppedTotal
        let buffer = loop.readBuffer
        for _ in 0..<options.readsPerEvent {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n > 0 {
                lastReadAt = loop.now
                parser.feed(UnsafeRawBufferPointer(start: buffer.baseAddress, count: n))
                guard handleReplies(epoch: myEpoch) else { return }
                if n < buffer.count { break }
            } else if n == 0 {
                lost(.connectionLost, why: "closed by Redis")
                return
            } else {
                let e = montrose_errno()
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { break }
                lost(.connectionLost, why: "read: errno \(e)")
                return
            }
        }
        if ring.droppedTotal != droppedBefore { onDropped?(self) }
        if !ring.isEmpty { drain() }
    }

    func onWritable() {
        switch state {
        case .connecting:
            let err = Socket.pendingError(fd)
            guard err == 0 else {
                lost(.connectionLost, why: "connect: errno \(err)")
                return
            }
            state = .handshaking
            flush()
        case .handshaking, .ready:
            flush()
        default:
            return
        }
    }

    func onError() {
        lost(.connectionLost, why: "socket error: errno \(Socket.pendingError(fd))")
    }

    // MARK: replies

    /// Routes every whole reply parsed so far. False when the connection was torn down meanwhile.
    private func handleReplies(epoch myEpoch: Int) -> Bool {
        while true {
            let value: RESPValue
            do {
                guard let v = try parser.next() else { return true }
                value = v
            } catch {
                lost(.protocolViolation(error), why: "protocol: \(error)")
                return false
            }
            if isSubscriber, let items = Self.pubSubItems(value) {
                handlePubSub(items)
                guard epoch == myEpoch else { return false }
                continue
            }
            guard let completion = pending.popFirst() else {
                lost(.connectionLost, why: "a reply nobody asked for")
                return false
            }
            if case .error(let message) = value {
                completion?(.failure(.server(message)))
            } else {
                completion?(.success(value))
            }
            guard epoch == myEpoch else { return false }
        }
    }

    /// The elements of an unasked pub/sub reply (a RESP3 push, or a RESP2 array naming one of
    /// the pub/sub kinds), or nil for a reply to a command.
    private static func pubSubItems(_ value: RESPValue) -> [RESPValue]? {
        switch value {
        case .push(let items):
            return items
        case .array(let items):
            guard let kind = items.first?.bytes else { return nil }
            switch String(decoding: kind, as: UTF8.self) {
            case "message", "pmessage", "subscribe", "unsubscribe", "psubscribe", "punsubscribe": return items
            default: return nil
            }
        default:
            return nil
        }
    }

    private func handlePubSub(_ items: [RESPValue]) {
        guard let kind = items.first?.string else { return }
        switch kind {
        case "message" where items.count == 3:
            guard let channel = items[1].string, let payload = items[2].bytes else { return }
            ring.offer(InboundRing.Message(channel: channel, payload: payload))
        case "pmessage" where items.count == 4:
            guard let channel = items[2].string, let payload = items[3].bytes else { return }
            ring.offer(InboundRing.Message(channel: channel, payload: payload))
        default:
            if items.count >= 3, let count = items[2].integer { subscriptionCount = Int(count) }
            if items.count >= 2, let channel = items[1].string { onSubscription?(self, kind, channel) }
        }
    }

    /// Hands up to `drainPerTurn` queued messages to `onMessage`; the rest wait for the next turn.
    private func drain() {
        var budget = options.drainPerTurn
        while budget > 0, let m = ring.take() {
            onMessage?(self, m)
            budget -= 1
        }
        if !ring.isEmpty && !drainScheduled {
            drainScheduled = true
            loop.after(ms: 0) { [weak self] _ in
                guard let self else { return }
                self.drainScheduled = false
                self.drain()
            }
        }
    }

    // MARK: output

    /// Commands queued in one loop turn leave together, in one write, at the end of the turn.
    private func scheduleFlush() {
        guard !flushScheduled, !writeInterest, state == .handshaking || state == .ready else { return }
        flushScheduled = true
        let myEpoch = epoch
        loop.after(ms: 0) { [weak self] _ in
            guard let self else { return }
            self.flushScheduled = false
            if self.epoch == myEpoch { self.flush() }
        }
    }

    private func flush() {
        switch out.flush(fd: fd) {
        case .drained: setWriteInterest(false)
        case .partial: setWriteInterest(true)
        case .failed(let e): lost(.connectionLost, why: "send: errno \(e)")
        }
    }

    private func setWriteInterest(_ on: Bool) {
        guard writeInterest != on, let id = socketID else { return }
        writeInterest = on
        loop.setWriteInterest(id, on)
    }
}
