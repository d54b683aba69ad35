// One node's position in one conversation's stream, in front of its Router: a pure state machine
// (no socket, store, clock or timer of its own). Messages reach a node from its own commits and,
// over the bus, from other nodes' commits, interleaved and sometimes lost (the bus is lossy), so
// - the next seq is delivered at once;
// - a seq at or below the position was delivered already: dropped;
// - a later seq is held, and the caller waits a few ms (`gapWaitMs`) for the missing ones
//   before reading them from the store (`fetch`), page by page, and only then releases what it
//   held: the node's subscribers see 1, 2, 3… and one store read serves all of them;
// - the last message of a burst can be lost with nothing after it to show the gap: the caller
//   compares the position with the store's last seq after every bus reconnect and periodically
//   (`check`), and fetches when the store is ahead.
// Until the node knows where the stream is (`start(lastSeq:)`), everything is passed through as
// it comes: each subscriber's own delivery rule (SubscriptionDelivery) orders that short window.
// The start delivers the stream's last message once more, read from the store, so that one the
// bus lost in that window reaches a subscriber who read the stream before it (see `start`).
struct StreamCursor {
    /// The last seq delivered on this node (nil: not started, passing through).
    private(set) var position: Int64?
    /// Early publications by seq, waiting for the ones before them.
    private(set) var held: [Int64: Publication] = [:]
    /// Live: publications go through; waiting: the gap timer is armed; fetching: a store
    /// read is in flight (live publications are held until it is back).
    private enum Phase { case live, waiting, fetching }
    private var phase = Phase.live
    /// The highest seq seen while not started (the position must not go back below it).
    private var highestPassed: Int64 = 0
    /// Store reads in a row that found nothing past the position while publications were held.
    private var fruitlessReads = 0
    /// Messages the read in flight delivered.
    private var deliveredByRead = 0

    /// Held publications beyond this are dropped (the fetch brings them anyway).
    static let maxHeld = 1_000
    /// A message is published only after it is committed, so a store read that finds nothing
    /// past the position while later seqs are held means those seqs are not in the store: after
    /// this many such reads they are dropped (a corrupt publication must not make the node read
    /// the store every `gapWaitMs` for ever).
    static let maxFruitlessReads = 3
    /// How long a gap may stay open before the store is read: long enough for a message
    /// overtaken on the bus, short enough not to be noticed.
    static let gapWaitMs = 20

    enum Offer: Equatable {
        /// Deliver it, then deliver every publication `nextHeld()` returns.
        case deliver
        /// Delivered already (or older): drop it.
        case drop
        /// Kept; arm the gap timer (`gapTimerFired` after `gapWaitMs`).
        case holdAndWait
        /// Kept (or dropped past `maxHeld`); a timer or a fetch is already under way.
        case hold
    }

    /// A message publication for this stream.
    mutating func offer(_ p: Publication, seq: Int64) -> Offer {
        guard let position else {
            highestPassed = max(highestPassed, seq)
            return .deliver
        }
        if seq <= position { return .drop }
        if seq == position + 1 && phase != .fetching {
            self.position = seq
            return .deliver
        }
        if held.count < Self.maxHeld { held[seq] = p }
        return armGapTimer() ? .holdAndWait : .hold
    }

    /// Arms the gap timer unless it is armed or a read is in flight.
    private mutating func armGapTimer() -> Bool {
        guard phase == .live else { return false }
        phase = .waiting
        return true
    }

    /// After a `.deliver`, and after each fetched message: the next held publication, if it is
    /// the next seq (the position moves past it).
    mutating func nextHeld() -> Publication? {
        guard let position, phase != .fetching, let p = held.removeValue(forKey: position + 1) else { return nil }
        self.position = position + 1
        return p
    }

    /// The node now knows the stream's last seq (read after its first local subscriber was
    /// registered). The position starts one before it, and the last message is read from the
    /// store and delivered again: a subscriber whose own read came before that message, which
    /// the bus lost while the node's subscription to it was not yet active, sees the gap
    /// through it (a subscriber that has it drops it). Without that, nothing would show the gap
    /// until the conversation's next message. What passed through meanwhile showed any gap
    /// already: the position never starts below it.
    mutating func start(lastSeq: Int64) -> Check {
        if position == nil { position = max(lastSeq - 1, highestPassed, 0) }
        return check(storeLastSeq: lastSeq)
    }

    enum Check: Equatable {
        case upToDate
        /// Read the messages after `after` from the store and feed them to `fetched`.
        case fetch(after: Int64)
    }

    /// The gap timer ran out with the gap still open: read it from the store.
    mutating func gapTimerFired() -> Check {
        if phase == .waiting { phase = .live }
        guard let position, phase == .live, !held.isEmpty else { return .upToDate }
        return startRead(after: position)
    }

    private mutating func startRead(after position: Int64) -> Check {
        phase = .fetching
        deliveredByRead = 0
        return .fetch(after: position)
    }

    /// The store's last seq (a periodic check, or after a bus reconnect): fetch when it is ahead.
    mutating func check(storeLastSeq: Int64) -> Check {
        guard let position, storeLastSeq > position, phase != .fetching else { return .upToDate }
        return startRead(after: position)
    }

    /// One fetched message, in page order: true when it is the next seq (deliver it).
    mutating func fetched(seq: Int64) -> Bool {
        guard let position, seq == position + 1 else { return false }
        self.position = seq
        deliveredByRead += 1
        return true
    }

    /// A page is done. `more`: the store has more after it (fetch again). Otherwise the cursor
    /// takes live publications again: deliver what `nextHeld()` returns, and if a gap is still
    /// open behind what is held, wait for it as for a new one.
    mutating func pageDone(more: Bool) -> PageStep {
        guard let position else { phase = .live; return .done }
        if more { return .fetch(after: position) }
        phase = .live
        held = held.filter { $0.key > position }
        if deliveredByRead > 0 || held.isEmpty {
            fruitlessReads = 0
        } else {
            fruitlessReads += 1
            if fruitlessReads >= Self.maxFruitlessReads {
                held = [:] // seqs the store does not have: nothing published them truly
                fruitlessReads = 0
            }
        }
        return .done
    }

    /// The store read failed: held publications stay, the next offer or check tries again.
    mutating func fetchFailed() {
        phase = .live
    }

    enum PageStep: Equatable {
        case fetch(after: Int64)
        /// Deliver what `nextHeld()` returns; then `afterRelease()`.
        case done
    }

    /// After releasing held publications: true when a gap remains behind what is still held
    /// (arm the gap timer, as for a new one).
    mutating func afterRelease() -> Bool {
        !held.isEmpty && armGapTimer()
    }
}
