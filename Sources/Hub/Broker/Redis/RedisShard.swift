import Core
import Protocol

// One Redis instance as one node sees it: a command connection (PUBLISH, probes) and a
// subscriber connection, both on one loop, and the node's subscriptions on that instance.
//
// Subscriptions follow the node's interest, never a connection's: `noteInterest` (called
// under the Router's interest lock) only queues the change and wakes the loop; the loop then
// sends SUBSCRIBE / UNSUBSCRIBE for everything queued, in commands of at most
// `subscribeBatch` channels. After the subscriber reconnects, every channel the node wants is
// subscribed again, in the same batches.
//
// The probe: every second the node PUBLISHes on its own probe channel through the command
// connection and expects the echo on the subscriber. No echo for `silentAfterMs` while both
// are up means a connection is open but silent (a dead peer the kernel has not noticed, a
// blackholed route): both are dropped and reconnected.
//
// `@unchecked Sendable`: the connections and the subscription sets are used only on `loop`'s
// thread; `pending` and `published` are behind locks for the other threads.
final class RedisShard: @unchecked Sendable {
    struct Options: Sendable {
        var subscribeBatch = 1_000
        var probeIntervalMs: Int64 = 1_000
        /// How often the echo's age is checked (a fraction of the probe interval).
        var probeCheckMs: Int64 = 250
        var silentAfterMs: Int64 = 2_500
        var inbound = InboundRing.Limits()
        var connection = RedisConnection.Options()
        init() {}
    }

    /// What other threads may read about this shard (metrics, /healthz).
    struct Status: Sendable, Equatable {
        var endpoint: String
        var up = false
        /// Round trip of the last probe that came back.
        var lastProbeMs: Int64?
        var dropped = 0
        var subscribed = 0
        var reconnects = 0
        var silentResets = 0
    }

    let index: Int
    let endpoint: RedisEndpoint
    unowned let loop: EventLoop
    let options: Options
    private let prefix: String
    private let prefixBytes: [UInt8]
    /// This node's probe channel (with the prefix).
    let probeChannel: String
    let cmd: RedisConnection
    let sub: RedisConnection

    private let pending = Locked<(changes: [(String, Bool)], scheduled: Bool)>(([], false))
    let published: Locked<Status>
    // Loop thread only:
    private var desired = Set<String>()
    private var requested = Set<String>()
    private var lastEcho: Int64 = 0
    private var probeTimer: TimerID?
    private var checkTimer: TimerID?
    private var stopped = false

    /// A message on one of the node's channels: (channel without the prefix, payload). Loop thread.
    var onMessage: ((String, [UInt8]) -> Void)?
    /// Channels (without the prefix) that may have lost publications: every wanted channel
    /// once the subscriber is up again and has subscribed anew, or those whose messages the
    /// inbound ring dropped. What they missed must be read from the store.
    var onCatchUpNeeded: (([String]) -> Void)?

    init(index: Int, endpoint: RedisEndpoint, loop: EventLoop, prefix: String, nodeID: String, options: Options) {
        self.index = index
        self.endpoint = endpoint
        self.loop = loop
        self.options = options
        self.prefix = prefix
        prefixBytes = Array(prefix.utf8)
        probeChannel = "\(prefix)node:\(nodeID)"
        published = Locked(Status(endpoint: endpoint.description))
        let name = Self.clientName(prefix: prefix, nodeID: nodeID, shard: index)
        cmd = RedisConnection(endpoint: endpoint, name: name + "-cmd", role: .commands, loop: loop, options: options.connection)
        sub = RedisConnection(endpoint: endpoint, name: name + "-sub", role: .subscriber(options.inbound), loop: loop, options: options.connection)
    }

    /// CLIENT SETNAME takes no spaces: the cluster name and node id are `NodeID`s.
    private static func clientName(prefix: String, nodeID: String, shard: Int) -> String {
        "\(prefix)\(nodeID)-s\(shard)"
    }

    // MARK: lifecycle (loop thread)

    func start() {
        sub.onUp = { [unowned self] _ in self.subscriberUp() }
        sub.onDown = { [unowned self] _ in self.subscriberDown() }
        sub.onMessage = { [unowned self] _, m in self.received(m) }
        sub.onDropped = { [unowned self] _ in
            let channels = self.takeDroppedChannels()
            self.publishStatus()
            if !channels.isEmpty { self.onCatchUpNeeded?(channels) }
        }
        cmd.onUp = { [unowned self] _ in
            self.lastEcho = monotonicMillis() // grace: the first probe on this connection is not yet due
            self.publishStatus()
        }
        cmd.onDown = { [unowned self] _ in self.publishStatus() }
        cmd.start()
        sub.start()
        probeTimer = loop.after(ms: options.probeIntervalMs) { [weak self] _ in self?.probe() }
        checkTimer = loop.after(ms: options.probeCheckMs) { [weak self] _ in self?.checkEcho() }
    }

    func stop() {
        stopped = true
        if let t = probeTimer { loop.cancel(t) }
        if let t = checkTimer { loop.cancel(t) }
        for c in [cmd, sub] {
            c.onUp = nil
            c.onDown = nil
            c.onMessage = nil
            c.onSubscription = nil
            c.onDropped = nil
            c.close()
        }
        onMessage = nil
        onCatchUpNeeded = nil
        publishStatus()
    }

    // MARK: interest

    /// From any thread, under the Router's interest lock: only queues (never calls back).
    func noteInterest(_ channel: String, _ interested: Bool) {
        let wake = pending.withLock { p -> Bool in
            p.changes.append((prefix + channel, interested))
            defer { p.scheduled = true }
            return !p.scheduled
        }
        if wake { loop.execute { [self] _ in applyInterest() } }
    }

    private func applyInterest() {
        let changes = pending.withLock { p -> [(String, Bool)] in
            p.scheduled = false
            defer { p.changes = [] }
            return p.changes
        }
        guard !stopped else { return }
        var touched: [String] = []
        for (channel, interested) in changes {
            if interested { desired.insert(channel) } else { desired.remove(channel) }
            touched.append(channel)
        }
        guard sub.isUp else { return } // subscriberUp sends all of `desired`
        var subscribe: [String] = [], unsubscribe: [String] = []
        for channel in touched {
            if desired.contains(channel) {
                if requested.insert(channel).inserted { subscribe.append(channel) }
            } else if requested.remove(channel) != nil {
                unsubscribe.append(channel)
            }
        }
        sendInBatches(subscribe, sub.subscribe)
        sendInBatches(unsubscribe, sub.unsubscribe)
        publishStatus()
    }

    private func sendInBatches(_ channels: [String], _ send: ([String]) -> Void) {
        var start = 0
        while start < channels.count {
            let end = min(start + options.subscribeBatch, channels.count)
            send(Array(channels[start..<end]))
            start = end
        }
    }

    private func subscriberUp() {
        requested = desired
        requested.insert(probeChannel)
        lastEcho = monotonicMillis()
        sendInBatches([probeChannel] + Array(desired), sub.subscribe)
        publishStatus()
        let channels = desired.map { String($0.dropFirst(prefix.count)) }
        if !channels.isEmpty { onCatchUpNeeded?(channels) }
    }

    private func subscriberDown() {
        requested = []
        publishStatus()
    }

    // MARK: messages

    private func received(_ m: InboundRing.Message) {
        if m.channel == probeChannel {
            let now = monotonicMillis()
            lastEcho = now
            if let sent = Int64(String(decoding: m.payload, as: UTF8.self)) {
                published.withLock { $0.lastProbeMs = now - sent }
            }
            return
        }
        guard m.channel.hasPrefix(prefix) else { return }
        onMessage?(String(m.channel.dropFirst(prefix.count)), m.payload)
    }

    /// PUBLISH on the channel's connection (loop thread), pipelined behind earlier ones.
    func publish(_ channel: String, _ envelope: [UInt8]) {
        cmd.send(nil) { $0.appendPublish(prefix: prefixBytes, channel: channel, message: envelope) }
    }

    /// Channels whose inbound messages were dropped (without the prefix; a lost probe needs no
    /// catch-up).
    private func takeDroppedChannels() -> [String] {
        sub.takeDroppedChannels().compactMap { c in
            c != probeChannel && c.hasPrefix(prefix) ? String(c.dropFirst(prefix.count)) : nil
        }
    }

    // MARK: probe

    private func probe() {
        guard !stopped else { return }
        if cmd.isUp { cmd.send(["PUBLISH", probeChannel, String(monotonicMillis())], nil) }
        publishStatus()
        probeTimer = loop.after(ms: options.probeIntervalMs) { [weak self] _ in self?.probe() }
    }

    private func checkEcho() {
        guard !stopped else { return }
        let now = monotonicMillis()
        if cmd.isUp && sub.isUp && now - lastEcho > options.silentAfterMs {
            Log.info("redis_probe_silent", ["redis": endpoint.description, "silent_ms": String(now - lastEcho)])
            published.withLock { $0.silentResets += 1 }
            lastEcho = now
            sub.reconnect()
            cmd.reconnect()
        }
        checkTimer = loop.after(ms: options.probeCheckMs) { [weak self] _ in self?.checkEcho() }
    }

    private func publishStatus() {
        let up = cmd.isUp && sub.isUp
        let subscribed = sub.subscriptionCount
        let dropped = sub.droppedTotal
        let reconnects = cmd.reconnects + sub.reconnects
        published.withLock {
            $0.up = up
            $0.subscribed = subscribed
            $0.dropped = dropped
            $0.reconnects = reconnects
        }
    }
}
