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
/// Publications are delivered by sweeps: one channel at a time, its subscribers visited in the
/// order they subscribed, each given every publication it has not had yet at once and written
/// straight away. A group commit's 64 messages to 1,000 subscribers touch each session and
/// connection once, not 64 times (those first touches, cache misses, were most of a delivery's
/// own cost), and readers have their pushes while the loop goes on to the next subscriber.
///
/// A sweep stops once the turn's budget (`EngineLimits.flushBudgetMicros`) is spent and goes
/// on in the next turn, after that turn's input. What comes for its channel meanwhile joins it:
/// the subscribers still ahead get old and new together, and the sweep goes round once more for
/// those it had passed. So a loop that falls behind a busy channel writes each subscriber what
/// piled up in one write, and no publication waits for the one before it to reach everyone.
/// A publication of another channel waits for the sweep to end, and what comes after it waits
/// behind it: each subscriber gets every channel's publications in order, and publications of
/// different channels in the order they came. A change to the lists (subscribe, unsubscribe,
/// a connection's close, revoke) first finishes the sweep and everything queued, so nobody gets
/// a publication that came before they subscribed or after they left; that finish only queues
/// the pushes (about 0.1 µs a subscriber), and the loop's write pass writes them within its
/// budget.
///
/// What bounds a sweep's publications: each stays until every subscriber has had it, so a loop
/// behind a busy channel holds what came during one round. A subscriber handed more than its
/// output cap (`EngineLimits.effectiveMaxOutputBytes`) at once is cut off (4009, recover with
/// `since`), and a cut subscriber costs the round next to nothing, so the round, and with it
/// the backlog, shrinks again instead of growing without end.
final class LoopRegistry: @unchecked Sendable {
    private unowned let loop: EventLoop
    private var channels: [String: SubscriberList] = [:]
    /// Publications in the order they came, not yet taken by a sweep.
    private var queue: FIFO<Publication>
    /// The sweep's publications, each stamped (same place in `stamps`) with the position at
    /// which it joined; those every subscriber has are dropped. The subscriber at `position`
    /// gets those stamped after `position - places`: the ones that joined since the sweep last
    /// passed it. A sweep is under way while it holds any.
    private var log: FIFO<Publication>
    private var stamps: FIFO<Int>
    /// The sweep's subscribers as they were when it began (a change to the lists finishes it
    /// first; only a subscriber closed from inside a delivery leaves the list while it goes
    /// on, and that one takes no more pushes), and how far it went, counting places (holes
    /// too) from the first subscriber, round and round.
    private var sweepList = SubscriberList()
    private var position = 0
    /// A delivery is under way on this thread's stack: a subscriber it cut off leaves
    /// (`remove`) from inside it, and the sweep then goes on to its end within that call, only
    /// queueing, as a change to the lists would have it.
    private var delivering = false
    private var mustFinish = false
    private var atEndScheduled = false
    private var resumeScheduled = false
    /// Made once: handing a new closure to the loop for every drain or turn allocated its context.
    private lazy var deliverAtEnd: () -> Void = { [unowned self] in
        atEndScheduled = false
        deliverPending(withinBudget: true)
    }
    private lazy var resume: () -> Void = { [unowned self] in
        resumeScheduled = false
        // Not when a change to the lists finished the sweep meanwhile.
        if !log.isEmpty { loop.shared.fanOutsResumed.add(1, ordering: .relaxed) }
        deliverPending(withinBudget: true)
    }

    init(loop: EventLoop) {
        self.loop = loop
        queue = FIFO(keepingCapacity: loop.limits.loopListCapacity)
        log = FIFO(keepingCapacity: loop.limits.loopListCapacity)
        stamps = FIFO(keepingCapacity: loop.limits.loopListCapacity)
    }

    /// Called by a mailbox job: delivered at the end of the drain, or by the sweep that a
    /// budget stopped when it goes on next turn.
    func deliver(_ p: Publication) {
        queue.append(p)
        if !atEndScheduled && !resumeScheduled {
            atEndScheduled = true
            loop.atEndOfMailbox(deliverAtEnd)
        }
    }

    /// Delivers what came: within the turn's budget, each subscriber written as it is reached
    /// (`withinBudget`; the rest goes on next turn), or all of it at once before a change to
    /// the lists, only queued (the loop's write pass then writes it, within its own budget).
    func deliverPending(withinBudget: Bool = false) {
        if delivering {
            // Re-entered by a subscriber leaving mid-delivery: the sweep under way finishes first.
            mustFinish = true
            return
        }
        delivering = true
        defer { delivering = false }
        let deadline = withinBudget ? monotonicMicros() + loop.limits.flushBudgetMicros : Int64.max
        var reached = 0 // subscribers this call reached, over all its sweeps
        while true {
            if log.isEmpty {
                guard !queue.isEmpty else { return }
                sweepList = channels[queue[0].channel] ?? SubscriberList()
                position = 0
            }
            takeQueued()
            let places = sweepList.places
            while true {
                while !stamps.isEmpty && stamps[0] <= position - places {
                    log.removeFirst(1)
                    stamps.removeFirst(1)
                }
                if log.isEmpty { break }
                // Checked before the next subscriber, not after the last one: a sweep that is
                // done ends now instead of a turn later. Each call reaches at least one.
                if reached > 0 && !mustFinish && monotonicMicros() >= deadline {
                    resumeScheduled = true // a budgeted call runs only when none was pending
                    loop.resumeNextTurn(resume)
                    return
                }
                let place = position % places
                position += 1
                guard let s = sweepList[place] else { continue }
                s.session.deliver(log.elements, s.subscription, writeNow: withinBudget && !mustFinish)
                reached += 1
            }
            // Everyone has everything: its copy of the list goes, so changing the list copies nothing.
            sweepList = SubscriberList()
            mustFinish = false
        }
    }

    /// What came for the sweep's channel joins it (the channel of the queue's first when the
    /// sweep begins), up to a publication of another channel.
    private func takeQueued() {
        guard let channel = log.isEmpty ? queue.first?.channel : log[0].channel else { return }
        while let p = queue.first, p.channel == channel {
            log.append(p)
            stamps.append(position)
            queue.removeFirst(1)
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
/// which may never read, is written after the readers already there, not mixed among them
/// (one that joins a sweep under way reaches those still ahead of it first, then the rest).
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

    /// Places in the list, holes included (a sweep counts its way round by places).
    var places: Int { entries.count }

    /// The subscriber at `place`, nil for a hole.
    subscript(place: Int) -> Subscriber? { entries[place] }
}
