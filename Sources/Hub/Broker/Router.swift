import Core
import Protocol
import Synchronization

// This node's fan-out: channel → local subscribers. Each loop keeps its own registry
// (touched only on that loop's thread); a shared, rarely written map says which loops have
// subscribers of a channel, so a delivery visits only the loops that care. A publication is
// encoded once; every subscriber on every loop queues the same bytes. Pushes reach the Router
// through the Broker, never directly: the Broker decides which nodes see them.

final class Router: Sendable {
    private let loops: [EventLoop]
    private let interest = Locked<[String: Set<Int>]>([:])
    private let registries: [LoopRegistry]
    /// Told when this node gains its first subscriber of a channel (true) or loses its last
    /// (false), under the interest lock, so the calls for one channel arrive in order.
    private let nodeInterest = Locked<(@Sendable (String, Bool) -> Void)?>(nil)

    init(loops: [EventLoop]) {
        self.loops = loops
        registries = loops.map { LoopRegistry(loop: $0) }
    }

    /// Set once by the broker, before any session subscribes.
    func onNodeInterestChange(_ body: @escaping @Sendable (String, Bool) -> Void) {
        nodeInterest.withLock { $0 = body }
    }

    /// On the session's loop thread. `subscription` is the session's delivery state for the
    /// channel, handed back with every publication (nil for a broadcast audience).
    func subscribe(_ session: Session, to channel: String, loop: Int, subscription: Session.Subscription?) {
        if registries[loop].add(Subscriber(session: session, subscription: subscription), channel) {
            interest.withLock { map in
                let first = map[channel] == nil
                map[channel, default: []].insert(loop)
                if first { nodeInterest.load()?(channel, true) }
            }
        }
    }

    /// On the session's loop thread. `subscription`: the one it subscribed with (nil for a
    /// broadcast audience): the session's place in the list is kept there.
    func unsubscribe(_ session: Session, from channel: String, loop: Int, subscription: Session.Subscription?) {
        if registries[loop].remove(session, channel, subscription) {
            interest.withLock { map -> Void in
                map[channel]?.remove(loop)
                if map[channel]?.isEmpty == true {
                    map[channel] = nil
                    nodeInterest.load()?(channel, false)
                }
            }
        }
    }

    /// From any thread (the broker's). Pushes from one thread reach every local subscriber in
    /// the order delivered.
    func deliver(_ p: Publication) {
        let targets = interest.withLock { $0[p.channel] } ?? []
        for i in targets {
            let registry = registries[i]
            loops[i].execute { _ in registry.deliver(p) }
        }
    }

    /// Ends `user`'s subscriptions to `channel` on this node's loops (an assignment was removed).
    func revoke(_ channel: String, user: String) {
        let targets = interest.withLock { $0[channel] } ?? []
        for i in targets {
            let registry = registries[i]
            loops[i].execute { _ in registry.revoke(channel, user: user) }
        }
    }

    /// Whether any connection on this node is subscribed.
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
///
/// The publications of one mailbox drain are delivered together at its end, each subscriber
/// taking a run of one channel's publications at once: a group commit's 64 messages to 1,000
/// subscribers touch each session and connection once, not 64 times (those first touches, cache
/// misses, were most of a delivery's own cost), and each subscriber is written as soon as its
/// run is queued, so readers have their pushes while the loop goes on to the next subscriber.
/// Each subscriber still gets every channel's publications in order, and publications of
/// different channels in the order they came.
///
/// A drain's delivery stops once the loop's turn budget (`EngineLimits.flushBudgetMicros`) is
/// spent and goes on in the next turn, after that turn's input, where it stopped: a fan-out to
/// thousands is spread over short turns, as their writes are. A change to the lists
/// (subscribe, unsubscribe, revoke) first delivers everything pending, so nobody gets a
/// publication that came before they subscribed or after they left, and a delivery cut short
/// resumes on the list it started with.
final class LoopRegistry: @unchecked Sendable {
    private unowned let loop: EventLoop
    private var channels: [String: SubscriberList] = [:]
    /// Publications the drain's jobs left, then the batch being delivered: its runs before
    /// `runStart` are done.
    private var pending: [Publication] = []
    private var batch: [Publication] = []
    private var runStart = 0
    /// Where a turn's budget stopped the run at `runStart`: its subscribers as they were (the
    /// lists do not change before it is finished), from `place` on.
    private var cut: (list: SubscriberList, place: Int)?
    /// A delivery is under way on this thread's stack: a subscriber it cut off leaves
    /// (`remove`) from inside it, and that delivery then goes on to the end of its list.
    private var delivering = false
    private var mustFinish = false
    private var resumeScheduled = false
    /// Made once: handing a new closure to the loop for every drain or turn allocated its context.
    private lazy var deliverAtEnd: () -> Void = { [unowned self] in deliverPending(withinBudget: true) }
    private lazy var resume: () -> Void = { [unowned self] in
        resumeScheduled = false
        loop.shared.fanOutsResumed.add(1, ordering: .relaxed)
        deliverPending(withinBudget: true)
    }

    init(loop: EventLoop) {
        self.loop = loop
    }

    /// Called by a mailbox job: delivered at the end of the drain.
    func deliver(_ p: Publication) {
        if pending.isEmpty { loop.atEndOfMailbox(deliverAtEnd) }
        pending.append(p)
    }

    /// Delivers what the drains left, in runs of one channel: within the turn's budget
    /// (`withinBudget`, then resumed next turn) or all of it.
    func deliverPending(withinBudget: Bool = false) {
        if delivering {
            // Re-entered by a subscriber leaving mid-delivery: the delivery under way finishes.
            mustFinish = true
            return
        }
        delivering = true
        defer {
            delivering = false
            mustFinish = false
        }
        let deadline = withinBudget ? monotonicMicros() + loop.limits.flushBudgetMicros : Int64.max
        while true {
            if runStart == batch.count {
                batch.removeAll(keepingCapacity: true)
                runStart = 0
                guard !pending.isEmpty else { return }
                swap(&pending, &batch)
            }
            let channel = batch[runStart].channel
            var end = runStart + 1
            while end < batch.count && batch[end].channel == channel { end += 1 }
            let (list, place) = cut ?? (channels[channel] ?? SubscriberList(), 0)
            cut = nil
            let run = batch[runStart..<end]
            let stop = list.visit(from: place) { s in
                s.session.deliver(run, s.subscription)
                return mustFinish || monotonicMicros() < deadline
            }
            if let stop {
                cut = (list, stop)
                if !resumeScheduled {
                    resumeScheduled = true
                    loop.resumeNextTurn(resume)
                }
                return
            }
            runStart = end
            mustFinish = false // the next run's list is read as it is now
        }
    }

    /// True when this is the loop's first subscriber of the channel.
    func add(_ s: Subscriber, _ channel: String) -> Bool {
        deliverPending()
        let first = channels[channel] == nil
        channels[channel, default: SubscriberList()].insert(s, channel: channel)
        return first
    }

    /// True when the loop has no subscriber of the channel left.
    func remove(_ s: Session, _ channel: String, _ subscription: Session.Subscription?) -> Bool {
        deliverPending()
        guard channels[channel]?.remove(s, channel: channel, subscription) == true else { return false }
        if channels[channel]?.isEmpty == true {
            channels[channel] = nil
            return true
        }
        return false
    }

    func revoke(_ channel: String, user: String) {
        deliverPending()
        guard let subscribers = channels[channel] else { return }
        subscribers.forEach { s in if s.session.user?.id == user { s.session.revoke(channel) } }
    }
}

/// One channel's subscribers on a loop, in the order they subscribed. A publish reaches (and
/// the loop then writes to) the longest-standing subscribers first, so a burst of newcomers,
/// which may never read, is written after the readers already there, not mixed among them.
/// Each subscriber's place is kept on the session's side (`Session.routerSlot`: in its
/// subscription, or for a broadcast audience in the session), not in a map here: a map of
/// every subscriber was some 28 bytes per connection and channel.
struct SubscriberList {
    private var entries: [Subscriber?] = []
    private var listed = 0
    private var holes = 0

    var isEmpty: Bool { listed == 0 }

    /// The place `session` holds for `channel`, if it is listed there.
    private func place(of session: Session, _ channel: String, _ subscription: Session.Subscription?) -> Int? {
        let i = session.routerSlot(for: channel, subscription)
        guard i >= 0, i < entries.count, entries[i]?.session === session else { return nil }
        return i
    }

    /// A session subscribing again keeps its place (with its new state).
    mutating func insert(_ s: Subscriber, channel: String) {
        if let i = place(of: s.session, channel, s.subscription) {
            entries[i] = s
            return
        }
        s.session.setRouterSlot(entries.count, for: channel, s.subscription)
        entries.append(s)
        listed += 1
    }

    /// False when the session was not subscribed. Leaves a hole; holes are squeezed out once
    /// they are half the list, so removal stays O(1) amortized.
    mutating func remove(_ session: Session, channel: String, _ subscription: Session.Subscription?) -> Bool {
        guard let i = place(of: session, channel, subscription) else { return false }
        session.setRouterSlot(-1, for: channel, subscription)
        entries[i] = nil
        listed -= 1
        holes += 1
        if holes >= 32 && holes * 2 >= entries.count { compact(channel) }
        return true
    }

    private mutating func compact(_ channel: String) {
        var kept: [Subscriber?] = []
        kept.reserveCapacity(listed)
        for case let s? in entries {
            s.session.setRouterSlot(kept.count, for: channel, s.subscription)
            kept.append(s)
        }
        entries = kept
        holes = 0
    }

    func forEach(_ body: (Subscriber) -> Void) {
        for case let s? in entries { body(s) }
    }

    /// Calls `body` for each subscriber from place `start` on, in order, until it answers false;
    /// returns the place after the one it stopped at, or nil when it reached them all.
    func visit(from start: Int, _ body: (Subscriber) -> Bool) -> Int? {
        var i = start
        while i < entries.count {
            let s = entries[i]
            i += 1
            if let s, !body(s) { return i < entries.count ? i : nil }
        }
        return nil
    }
}
