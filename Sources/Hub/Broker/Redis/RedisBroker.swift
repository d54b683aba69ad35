import Core
import Persistence
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
    /// The node id's bytes, as envelopes carry it (an echo of this node's own is told by these).
    private let nodeIDBytes: [UInt8]
    let ring: ShardRing
    private let router: Router
    private let prefix: String
    private let shards: [RedisShard]
    private let catchUp = Locked<(@Sendable ([String]) -> Void)?>(nil)
    /// The node's position in every conversation it follows (nil: publications go straight to
    /// the Router, as in tests of the bus alone).
    let cursors: StreamCursors?
    /// Envelopes this node could not read (another version or corrupt); counted, never delivered.
    private let unreadable = Locked(0)

    /// `endpoints` in the cluster's order (the same list on every node). Shard i runs on loop
    /// `i % loops.count`.
    /// `store`: where a gap in a conversation is read from (see StreamCursors).
    init(router: Router, loops: [EventLoop], endpoints: [RedisEndpoint], nodeID: String, store: (any Store)? = nil,
         options: Options = Options()) {
        precondition(!endpoints.isEmpty && !loops.isEmpty, "a RedisBroker needs an endpoint and a loop")
        self.router = router
        cursors = store.map { StreamCursors(deliver: router.deliver, store: $0, loop: loops[0]) }
        self.nodeID = nodeID
        nodeIDBytes = Array(nodeID.utf8)
        ring = ShardRing(instances: endpoints.map(\.address))
        let prefix = options.cluster + ":"
        self.prefix = prefix
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
        cursors?.start()
        router.onNodeInterestChange { [self] channel, interested in nodeInterestChanged(channel, interested) }
        for shard in shards {
            shard.loop.execute { [self] _ in
                shard.onMessage = { [weak self] channel, payload in self?.received(channel, payload) }
                shard.onCatchUpNeeded = { [weak self] channels in self?.needCatchUp(channels) }
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
        let shard = shards[ring.shard(for: channel)]
        shard.noteInterest(channel, interested)
        // One loop per channel: its follows and unfollows are applied in the order they came.
        if let cursors { shard.loop.execute { _ in interested ? cursors.follow(channel) : cursors.unfollow(channel) } }
    }

    // MARK: Broker

    func publish(_ p: Publication) {
        deliverHere(p)
        send(BrokerEnvelope.encode(kind: .push, origin: nodeIDBytes, seq: p.seq, notificationID: p.notificationID,
                                   member: p.member, staffOnly: p.staffOnly, body: p.payload),
             on: p.channel)
    }

    func revoke(_ channel: String, user: String) {
        router.revoke(channel, user: user)
        let body = Array(user.utf8)
        send(body.withUnsafeBytes { BrokerEnvelope.encode(kind: .revoke, origin: nodeIDBytes, seq: nil, notificationID: nil, body: $0) },
             on: channel)
    }

    /// Another node may have subscribers: always true (true when unsure is allowed).
    func hasInterest(_ channel: String) -> Bool { true }

    // MARK: commands for cluster state (presence, heartbeats)

    /// Runs `args` on the command connection of the instance that carries `key` (the ring's
    /// choice, as for channels); `completion` runs on that shard's loop. From any thread.
    /// Keys are not prefixed here: the caller names them with `keyPrefix`.
    func command(_ args: [[UInt8]], forKey key: String,
                 _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void) {
        let shard = shards[ring.shard(for: key)]
        shard.loop.execute { _ in shard.cmd.send(args, completion) }
    }

    /// `<cluster>:`, the prefix of every channel and key of this cluster.
    var keyPrefix: String { prefix }

    // MARK: state for metrics and /healthz

    func status() -> [RedisShard.Status] { shards.map { $0.published.withLock { $0 } } }
    var unreadableEnvelopes: Int { unreadable.withLock { $0 } }

    // MARK: inside

    private func send(_ envelope: [UInt8], on channel: String) {
        let shard = shards[ring.shard(for: channel)]
        shard.loop.execute { _ in shard.publish(channel, envelope) }
    }

    /// On a shard's loop.
    private func received(_ channel: String, _ payload: [UInt8]) {
        guard let e = BrokerEnvelope.header(of: payload, ownID: nodeIDBytes) else {
            unreadable.withLock { $0 += 1 }
            return
        }
        guard !e.own else { return } // delivered here when published
        // The body is framed (or read) where it lies in the received bytes: no copy of it first.
        payload.withUnsafeBytes { all in
            let body = UnsafeRawBufferPointer(rebasing: all[e.bodyStart...])
            switch e.kind {
            case .push:
                deliverHere(Publication(channel: channel, payload: body, seq: e.seq, notificationID: e.notificationID, member: e.member,
                                        staffOnly: e.staffOnly))
            case .revoke:
                let user = String(decoding: body, as: UTF8.self)
                guard UserID.isValid(user) else { return unreadable.withLock { $0 += 1 } }
                router.revoke(channel, user: user)
            }
        }
    }

    private func deliverHere(_ p: Publication) {
        if let cursors { cursors.deliver(p) } else { router.deliver(p) }
    }

    private func needCatchUp(_ channels: [String]) {
        cursors?.check(channels)
        catchUp.load()?(channels)
    }
}
