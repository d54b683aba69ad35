// What one subscription delivers, and when: a pure state machine with no socket, store or clock.
// Each transition returns what the session must do (send, hold, fetch, wait for the socket to
// drain, close 4009) as one enum value; the session carries it out. The per-delivery path
// (`onLive`) returns an enum, never an array: it runs once per subscriber per push.
//
// The rule it keeps: a subscriber receives a conversation's messages in seq order, with no gap
// and no duplicate. Live pushes and store fetches race (a push may commit before or after the
// fetch that also returns it), so
// - a push below `next` was already delivered by a fetch: dropped;
// - a push above `next` means one was missed: it is held, and the gap is fetched from the store;
// - while a fetch is in flight every live push is held, and released in order when it is back;
// - held pushes are bounded: past the cap the connection is told to recover with `since` (4009).
struct SubscriptionDelivery {
    /// The next seq this connection must receive (conversations).
    private(set) var next: Int64 = 1
    /// False while a fetch from the store is in flight: live pushes wait in `held`.
    private(set) var ready: Bool
    private(set) var held: [Publication] = []

    init(ready: Bool) {
        self.ready = ready
    }

    var heldCount: Int { held.count }

    enum LiveAction: Equatable {
        /// Write it now: the next message (counted delivered), or a push that is not a message.
        case send
        /// A message below `next`: already delivered by a fetch.
        case skipDuplicate
        /// Kept until the fetch in flight is back.
        case hold
        /// A message past `next`: kept, and the messages after `after` must be fetched first.
        case holdAndFetch(after: Int64)
        /// Holding it would pass `maxHeld` (it was not kept): close 4009; `held` is the count.
        case overHeldCap(held: Int)
    }

    /// What to do after a fetch, or at the end of a fetched page.
    enum FetchStep: Equatable {
        /// Fetch the messages after `after` (the subscription stays paused).
        case fetch(after: Int64)
        /// Fetch the next page once the socket's queue has drained.
        case waitForDrain
        /// Caught up: deliver what `release()` returns.
        case release
    }

    /// A live publication for this subscription.
    mutating func onLive(_ p: Publication, maxHeld: Int) -> LiveAction {
        guard ready else { return hold(p, maxHeld: maxHeld) ? .hold : .overHeldCap(held: held.count) }
        guard let seq = p.seq else { return .send }
        if seq < next { return .skipDuplicate }
        if seq > next {
            // A gap (a push overtaken by a fetch boundary): fetch what is missing first.
            guard hold(p, maxHeld: maxHeld) else { return .overHeldCap(held: held.count) }
            return .holdAndFetch(after: startFetch())
        }
        next += 1
        return .send
    }

    /// Pauses live delivery for a fetch; answers the seq the fetch starts after.
    @discardableResult
    mutating func startFetch() -> Int64 {
        ready = false
        return next - 1
    }

    /// The subscribe fetch is back: `lastSeq` is the conversation's last seq and `pageLast`
    /// the last seq of the page fetched after `since` (nil when no page or an empty one).
    /// A `since` past the end counts from the end: no message not yet sent is ever skipped.
    mutating func onSubscribed(since: Int64?, lastSeq: Int64, pageLast: Int64?, more: Bool) -> FetchStep {
        next = (pageLast ?? min(since ?? lastSeq, lastSeq)) + 1
        return more ? .fetch(after: startFetch()) : .release
    }

    /// One message of a fetched page, in page order: true when it is the next one (send it).
    mutating func onFetched(seq: Int64) -> Bool {
        guard seq == next else { return false }
        next += 1
        return true
    }

    /// The end of a fetched page, after its messages were queued. Paced by the socket: the next
    /// page waits for the queue to drain as soon as it could take the queue (`queuedFrames`)
    /// past `stallLimit`, the count at which a socket that refuses output counts as stuck, so a
    /// catch-up alone never looks like a stuck reader.
    mutating func onPageEnd(more: Bool, queuedFrames: Int, pageSize: Int, stallLimit: Int) -> FetchStep {
        guard more else { return .release }
        if queuedFrames + pageSize > stallLimit { return .waitForDrain }
        return .fetch(after: startFetch())
    }

    /// Live again: hands back what was held, in the order it arrived, and holds nothing.
    mutating func release() -> [Publication] {
        ready = true
        let out = held
        held = []
        return out
    }

    private mutating func hold(_ p: Publication, maxHeld: Int) -> Bool {
        guard held.count < maxHeld else { return false }
        held.append(p)
        return true
    }
}
