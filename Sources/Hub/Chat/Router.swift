import Core
import Protocol
import Synchronization

// Fan-out: channel → subscribers. Each loop keeps its own registry of local subscribers
// (touched only on that loop's thread); a shared, rarely written map says which loops have
// subscribers of a channel, so a publish visits only the loops that care. A publication is
// encoded ONCE; every subscriber on every loop queues the same bytes.
//
// The single-node Broker: with one node a publish is this function call. A Redis or NATS
// broker would sit in front of `publish` later.

/// One published push: the encoded frame, and the seq of the message it carries (for sequence
/// checks; a plain value, so delivering to a subscriber copies nothing but the reference).
final class Publication: Sendable {
    let channel: String
    let frame: Bytes
    let seq: Int64?
    /// A notification or broadcast push: recorded per user when written, for receipts.
    let notificationID: Int64?
    init(channel: String, frame: Bytes, seq: Int64? = nil, notificationID: Int64? = nil) {
        self.channel = channel
        self.frame = frame
        self.seq = seq
        self.notificationID = notificationID
    }

    /// `{"type": type, …fields}` as a text frame, encoded once for every subscriber.
    static func push(channel: String, seq: Int64? = nil, notificationID: Int64? = nil, capacity: Int = 256,
                     _ write: (inout JSONWriter) -> Void) -> Publication {
        var w = JSONWriter(capacity: capacity)
        w.beginObject()
        write(&w)
        w.endObject()
        return Publication(channel: channel, frame: Bytes.frame(.text, w.bytes), seq: seq, notificationID: notificationID)
    }
}

final class Router: Sendable {
    private let loops: [EventLoop]
    private let interest = Locked<[String: Set<Int>]>([:])
    private let registries: [LoopRegistry]

    init(loops: [EventLoop]) {
        self.loops = loops
        registries = loops.map { _ in LoopRegistry() }
    }

    /// On the session's loop thread. `subscription` is the session's delivery state for the
    /// channel, handed back with every publication (nil for a broadcast audience).
    func subscribe(_ session: Session, to channel: String, loop: Int, subscription: Session.Subscription?) {
        if registries[loop].add(Subscriber(session: session, subscription: subscription), channel) {
            _ = interest.withLock { $0[channel, default: []].insert(loop) }
        }
    }

    /// On the session's loop thread.
    func unsubscribe(_ session: Session, from channel: String, loop: Int) {
        if registries[loop].remove(session, channel) {
            interest.withLock { map -> Void in
                map[channel]?.remove(loop)
                if map[channel]?.isEmpty == true { map[channel] = nil }
            }
        }
    }

    /// From any thread. Pushes from one thread reach every subscriber in the order published.
    func publish(_ p: Publication) {
        let targets = interest.withLock { $0[p.channel] } ?? []
        for i in targets {
            let registry = registries[i]
            loops[i].execute { _ in registry.deliver(p) }
        }
    }

    /// Ends `user`'s subscriptions to `channel` on every loop (an assignment was removed).
    func revoke(_ channel: String, user: String) {
        let targets = interest.withLock { $0[channel] } ?? []
        for i in targets {
            let registry = registries[i]
            loops[i].execute { _ in registry.revoke(channel, user: user) }
        }
    }

    /// Whether any connection anywhere is subscribed (`ChatService.deliver` skips the pushes of
    /// a notification no connection would receive).
    func hasSubscribers(_ channel: String) -> Bool {
        interest.withLock { $0[channel] != nil }
    }
}

/// A session subscribed to a channel, with its state for that channel (so delivering a
/// publication needs no per-subscriber lookup by channel name).
struct Subscriber {
    let session: Session
    let subscription: Session.Subscription?
}

/// One loop's channel → sessions map. `@unchecked Sendable`: created on the main thread, then
/// used only on its loop's thread (subscribe, unsubscribe and deliver all run there).
final class LoopRegistry: @unchecked Sendable {
    private var channels: [String: SubscriberList] = [:]

    /// True when this is the loop's first subscriber of the channel.
    func add(_ s: Subscriber, _ channel: String) -> Bool {
        let first = channels[channel] == nil
        channels[channel, default: SubscriberList()].insert(s)
        return first
    }

    /// True when the loop has no subscriber of the channel left.
    func remove(_ s: Session, _ channel: String) -> Bool {
        guard channels[channel]?.remove(s) == true else { return false }
        if channels[channel]?.isEmpty == true {
            channels[channel] = nil
            return true
        }
        return false
    }

    func deliver(_ p: Publication) {
        guard let subscribers = channels[p.channel] else { return }
        subscribers.forEach { $0.session.deliver(p, $0.subscription) }
    }

    func revoke(_ channel: String, user: String) {
        guard let subscribers = channels[channel] else { return }
        subscribers.forEach { s in if s.session.user?.id == user { s.session.revoke(channel) } }
    }
}

/// One channel's subscribers on a loop, in the order they subscribed. A publish reaches (and
/// the loop then writes to) the longest-standing subscribers first, so a burst of newcomers,
/// which may never read, is written after the readers already there, not mixed among them.
struct SubscriberList {
    private var entries: [Subscriber?] = []
    private var position: [ObjectIdentifier: Int] = [:]
    private var holes = 0

    var isEmpty: Bool { position.isEmpty }

    /// A session subscribing again keeps its place (with its new state).
    mutating func insert(_ s: Subscriber) {
        let key = ObjectIdentifier(s.session)
        if let i = position[key] {
            entries[i] = s
            return
        }
        position[key] = entries.count
        entries.append(s)
    }

    /// False when the session was not subscribed. Leaves a hole; holes are squeezed out once
    /// they are half the list, so removal stays O(1) amortized.
    mutating func remove(_ session: Session) -> Bool {
        guard let i = position.removeValue(forKey: ObjectIdentifier(session)) else { return false }
        entries[i] = nil
        holes += 1
        if holes >= 32 && holes * 2 >= entries.count { compact() }
        return true
    }

    private mutating func compact() {
        var kept: [Subscriber?] = []
        kept.reserveCapacity(position.count)
        for case let s? in entries {
            position[ObjectIdentifier(s.session)] = kept.count
            kept.append(s)
        }
        entries = kept
        holes = 0
    }

    func forEach(_ body: (Subscriber) -> Void) {
        for case let s? in entries { body(s) }
    }
}
