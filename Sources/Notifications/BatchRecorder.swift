import Dispatch
import Core

// Facts the loops learn one at a time and the store keeps in bulk: which notifications were
// written to a live socket (receipts), and when users connected or disconnected (the fallback
// mail rule). Loops only append to a list; a moment later the list is stored in chunks, one
// background writer job each (see JobQueue), so a broadcast to 19,000 connections or 2,000
// slow readers cut off at once costs each writer transaction one short job, behind the chat
// sends: not thousands of jobs queued in front of them, nor one long job in their commit.
public final class BatchRecorder<Item: Sendable>: Sendable {
    private let pending = Locked<[Item]>([])
    /// Held across take-and-store, so the flush at shutdown waits for a delayed one in progress
    /// (whose jobs must be queued before the store closes). Counts flushes: a lock around a
    /// zero-sized value shares its address with the lock itself, which ThreadSanitizer's
    /// access checks take for a race.
    private let flushes = Locked<Int>(0)
    private let store: @Sendable ([Item]) -> Void
    /// The order the facts are stored in, when one is given: rows inserted in key order touch
    /// each b-tree page once, not once per row scattered over the index.
    private let order: (@Sendable (Item, Item) -> Bool)?
    public let chunk: Int
    /// How long facts gather before they are stored. Long enough that a burst (a broadcast to
    /// every connection) is written to its sockets before the writer, which shares the CPU,
    /// starts storing its receipts; short enough that a receipt is there a moment later.
    /// A crash loses at most this much (receipts and last-seen times, never a message).
    public let delayMs: Int

    public init(chunk: Int = 100, delayMs: Int = 250, order: (@Sendable (Item, Item) -> Bool)? = nil,
                store: @escaping @Sendable ([Item]) -> Void) {
        self.chunk = chunk
        self.delayMs = delayMs
        self.order = order
        self.store = store
    }

    public func record(_ item: Item) {
        let first = pending.withLock { list -> Bool in
            list.append(item)
            return list.count == 1
        }
        if first {
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(delayMs)) { [self] in flush() }
        }
    }

    public func flush() {
        flushes.withLock { count in
            count += 1
            var list = pending.withLock { l -> [Item] in
                defer { l = [] }
                return l
            }
            if let order { list.sort(by: order) }
            var start = 0
            while start < list.count {
                let end = min(list.count, start + chunk)
                store(Array(list[start..<end]))
                start = end
            }
        }
    }
}
