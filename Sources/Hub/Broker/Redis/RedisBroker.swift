import Core
import Foundation
import Protocol

// The broker of a node in a cluster: every publication is delivered on this node at once and
// PUBLISHed, as a `BrokerEnvelope`, on the Redis instance the `ShardRing` gives its channel;
// what other nodes publish arrives on the subscriber connection of that instance and goes to
// this node's Router. The node subscribes to a channel once, however many of its sessions
// follow it (the Router's node interest), under `<cluster>:` so clusters sharing a Redis
// never see each other.
//
// Delivery between nodes is at most once (Redis pub/sub): a lost publication is found by seq
// and read from the store (`onCatchUpNeeded` names the channels that may have lost some).
// Publications from one thread stay in order: one thread's publishes for a channel go through
// one loop's mailbox to one connection, and Redis delivers a connection's PUBLISHes in order.
final class RedisBroker: Broker {
    struct Options: Sendable {
        /// Prefix of every channel and key: `<cluster>:` (default `montrose`).
        var cluster = "montrose"
        var shard = RedisShard.Options()
        init() {}
    }

    let nodeID: String
    let ring: ShardRing
    private let router: Router
    private let shards: [RedisShard]
    private let catchUp = Locked<(@Sendable ([String]) -> Void)?>(nil)
    /// Envelopes this node could not read (another version or corrupt); counted, never delivered.
    private let unreadable = Locked(0)

    /// `endpoints` in the cluster's order (the same list on every node). Shard i runs on loop
    /// `i % loops.count`.
    init(router: Router, loops: [EventLoop], endpoints: [RedisEndpoint], nodeID: String, options: Options = Options()) {
        precondition(!endpoints.isEmpty && !loops.isEmpty, "a RedisBroker needs an endpoint and a loop")
        self.router = router
        self.nodeID = nodeID
        ring = ShardRing(instances: endpoints.map(\.address))
        let prefix = options.cluster + ":"
        shards = endpoints.enumerated().map { i, e in
            RedisShard(index: i, endpoint: e, loop: loops[i % loops.count], prefix: prefix, nodeID: nodeID, options: options.shard)
        }
    }

    /// Told (on a shard's loop) which channels may have missed publications: all of a shard's
    /// channels after its subscriber reconnected, and those whose messages the inbound ring
    /// dropped. Set before `start`.
    func onCatchUpNeeded(_ body: @escaping @Sendable ([String]) -> Void) {
        catchUp.withLock { $0 = body }
    }

    /// Follows the Router's node interest and connects every shard.
    func start() {
        router.onNodeInterestChange { [self] channel, interested in nodeInterestChanged(channel, interested) }
        for shard in shards {
            shard.loop.execute { [self] _ in
                shard.onMessage = { [weak self] channel, payload in self?.received(channel, payload) }
                shard.onResubscribed = { [weak self] channels in self?.needCatchUp(channels) }
                shard.start()
            }
        }
    }

    /// Closes every connection (waits for the loops at most `deadlineMs`).
    func stop(deadlineMs: Int = 2_000) {
        router.onNodeInterestChange { _, _ in }
        let done = DispatchSemaphore(value: 0)
        for shard in shards {
            shard.loop.execute { _ in
                shard.stop()
                done.signal()
            }
        }
        let deadline = DispatchTime.now() + .milliseconds(deadlineMs)
        for _ in shards where done.wait(timeout: deadline) == .timedOut { break }
    }

    /// The node gained its first subscriber of `channel` or lost its last. Called under the
    /// Router's interest lock: it only queues the change for the channel's shard loop.
    func nodeInterestChanged(_ channel: String, _ interested: Bool) {
        shards[ring.shard(for: channel)].noteInterest(channel, interested)
    }

    // MARK: Broker

    func publish(_ p: Publication) {
        router.deliver(p)
        send(BrokerEnvelope(kind: .push, origin: nodeID, seq: p.seq, notificationID: p.notificationID, body: Array(p.payload)),
             on: p.channel)
    }

    func revoke(_ channel: String, user: String) {
        router.revoke(channel, user: user)
        send(BrokerEnvelope(kind: .revoke, origin: nodeID, seq: nil, notificationID: nil, body: Array(user.utf8)), on: channel)
    }

    /// Another node may have subscribers: always true (true when unsure is allowed).
    func hasInterest(_ channel: String) -> Bool { true }

    // MARK: state for metrics and /healthz

    func status() -> [RedisShard.Status] { shards.map { $0.published.withLock { $0 } } }
    var unreadableEnvelopes: Int { unreadable.withLock { $0 } }

    // MARK: inside

    private func send(_ envelope: BrokerEnvelope, on channel: String) {
        let shard = shards[ring.shard(for: channel)]
        let bytes = envelope.encoded()
        shard.loop.execute { _ in shard.publish(channel, bytes) }
    }

    /// On a shard's loop.
    private func received(_ channel: String, _ payload: [UInt8]) {
        guard let e = BrokerEnvelope(decoding: payload) else {
            unreadable.withLock { $0 += 1 }
            return
        }
        guard e.origin != nodeID else { return } // delivered here when published
        switch e.kind {
        case .push:
            let p = e.body.withUnsafeBytes { Publication(channel: channel, payload: $0, seq: e.seq, notificationID: e.notificationID) }
            router.deliver(p)
        case .revoke:
            router.revoke(channel, user: String(decoding: e.body, as: UTF8.self))
        }
    }

    private func needCatchUp(_ channels: [String]) {
        catchUp.withLock { $0 }?(channels)
    }
}
