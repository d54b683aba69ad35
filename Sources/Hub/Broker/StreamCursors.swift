import Core
import Synchronization
import Persistence
import Protocol

// A node's StreamCursor for every conversation it follows, between the bus and the Router: the
// messages of a conversation reach this node's subscribers in seq order, each once, whichever
// node committed them and whatever the bus lost. The rule is in StreamCursor; this class runs
// it: locks (the conversation's stripe), the gap timer (on `loop`), store reads, delivery.
//
// Delivery happens under the conversation's stripe lock, so the local path (a commit on the
// completion thread) and the remote path (a shard loop) never interleave one conversation's
// messages. Nothing here is called under the Router's lock: interest changes arrive queued.
final class StreamCursors: Sendable {
    private struct Entry {
        var cursor = StreamCursor()
        var key: ConversationKey
        /// Tells a store answer for an earlier follow of the channel from this one's.
        var generation: Int
    }
    private let entries = StripedChannels<Entry>()
    private let generations = Atomic<Int>(0)
    /// This node's Router (its `deliver`).
    private let toRouter: @Sendable (Publication) -> Void
    private let store: any Store
    /// Runs the gap timers and the periodic check.
    private let loop: EventLoop
    /// How often every followed conversation is compared with the store (a lost last message
    /// is delivered within about this long).
    let checkEveryMs: Int64

    init(deliver: @escaping @Sendable (Publication) -> Void, store: any Store, loop: EventLoop, checkEveryMs: Int64 = 5_000) {
        toRouter = deliver
        self.store = store
        self.loop = loop
        self.checkEveryMs = checkEveryMs
    }

    /// Runs `body` on the channel's entry in place, under its stripe's lock (nil when the
    /// channel is not followed, or followed anew since `generation`).
    private func withEntry<R>(_ channel: String, generation: Int? = nil, _ body: (inout Entry) -> R) -> R? {
        entries.withEntry(channel) { e -> R? in
            guard generation == nil || e.generation == generation else { return nil }
            return body(&e)
        } ?? nil
    }

    /// The last seq delivered for `channel` (nil: not followed, or its start not read yet).
    func position(_ channel: String) -> Int64? {
        withEntry(channel) { $0.cursor.position } ?? nil
    }

    /// Starts the periodic check (from any thread).
    func start() {
        loop.execute { [self] loop in scheduleCheck(loop) }
    }

    private func scheduleCheck(_ loop: EventLoop) {
        _ = loop.after(ms: checkEveryMs) { [self] loop in
            checkAll()
            scheduleCheck(loop)
        }
    }

    // MARK: following

    /// The node gained its first subscriber of `channel`: its position starts at the store's
    /// last seq, whose message is delivered again (what is published meanwhile passes through;
    /// see StreamCursor.start).
    func follow(_ channel: String) {
        guard case .conversation(let key) = Channel(channel) else { return }
        let generation = generations.add(1, ordering: .relaxed).newValue
        entries.withStripe(channel) { $0[channel] = Entry(key: key, generation: generation) }
        store.lastSeq(key) { [self] result in
            guard case .success(let last) = result else { return } // the periodic check starts it
            let step = withEntry(channel, generation: generation) { $0.cursor.start(lastSeq: last) }
            if case .fetch(let after) = step { fetch(channel, key, after: after, generation: generation) }
        }
    }

    /// The node lost its last subscriber of `channel`.
    func unfollow(_ channel: String) {
        entries.withStripe(channel) { $0[channel] = nil }
    }

    // MARK: publications

    /// A publication for this node's Router: messages of followed conversations go through
    /// their cursor; everything else straight through.
    func deliver(_ p: Publication) {
        guard let seq = p.seq else { return toRouter(p) }
        let armTimer = withEntry(p.channel) { e -> Int? in
            switch e.cursor.offer(p, seq: seq) {
            case .deliver:
                toRouter(p)
                while let next = e.cursor.nextHeld() { toRouter(next) }
            case .drop, .hold: break
            case .holdAndWait: return e.generation
            }
            return nil
        }
        guard let armTimer else { return toRouter(p) } // not followed: straight through
        if let generation = armTimer { waitForGap(p.channel, generation: generation) }
    }

    // MARK: gaps

    private func waitForGap(_ channel: String, generation: Int) {
        loop.execute { [self] loop in
            _ = loop.after(ms: Int64(StreamCursor.gapWaitMs)) { [self] _ in
                let step = withEntry(channel, generation: generation) { e in (e.cursor.gapTimerFired(), e.key) }
                if case let (.fetch(after), key)? = step { fetch(channel, key, after: after, generation: generation) }
            }
        }
    }

    /// Compares the named channels with the store (after a bus reconnect, or a channel whose
    /// messages the bus reader dropped) and fills what they miss. One store read per
    /// `checkChunk` channels: a node following thousands of conversations asks a few reads
    /// every period, not one per conversation.
    func check(_ channels: [String]) {
        var followed: [(channel: String, key: ConversationKey, generation: Int)] = []
        for channel in channels {
            if let (key, generation) = withEntry(channel, { e in (e.key, e.generation) }) {
                followed.append((channel, key, generation))
            }
        }
        var start = 0
        while start < followed.count {
            let chunk = Array(followed[start..<min(start + Self.checkChunk, followed.count)])
            start += Self.checkChunk
            store.lastSeqs(chunk.map(\.key)) { [self] result in
                guard case .success(let lasts) = result else { return }
                for (channel, key, generation) in chunk {
                    guard let last = lasts[key] else { continue }
                    // Starts a cursor whose first read failed; compares a started one.
                    let step = withEntry(channel, generation: generation) { $0.cursor.start(lastSeq: last) }
                    if case .fetch(let after) = step { fetch(channel, key, after: after, generation: generation) }
                }
            }
        }
    }

    /// Conversations per `lastSeqs` read in `check`.
    static let checkChunk = 500

    /// Every followed conversation against the store.
    func checkAll() {
        check(entries.channels)
    }

    private func fetch(_ channel: String, _ key: ConversationKey, after: Int64, generation: Int) {
        store.messages(key, after: after, limit: ContractLimits.maxPage) { [self] result in
            var next: Int64?
            var armTimer = false
            withEntry(channel, generation: generation) { e in
                guard case .success(let page) = result else {
                    e.cursor.fetchFailed() // held messages stay; the next check reads again
                    return
                }
                for m in page.messages where e.cursor.fetched(seq: m.seq) { toRouter(.message(m)) }
                switch e.cursor.pageDone(more: page.more) {
                case .fetch(let after): next = after
                case .done:
                    while let p = e.cursor.nextHeld() { toRouter(p) }
                    armTimer = e.cursor.afterRelease()
                }
            }
            if let next { fetch(channel, key, after: next, generation: generation) }
            if armTimer { waitForGap(channel, generation: generation) }
        }
    }
}
