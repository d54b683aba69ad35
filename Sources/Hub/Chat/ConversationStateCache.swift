import Core
import Persistence
import Synchronization

// What a subscribe without `since` answers (a conversation's last seq and its read marks), kept
// by this node's own commits for the conversations it has subscribers of, so that such a
// subscribe is answered on its loop, without a store read.
//
// One node only. There every message and every read mark is committed by this process, and the
// store's answer to each updates the entry on the completion thread before anyone is told of the
// commit, by ack, HTTP reply or push (`appended`, `markRead`). A subscriber registers with the
// Router first and reads the entry second, so a commit is either in what it reads or reaches it
// as a push. With several nodes, other nodes' commits arrive later or not at all (the bus may
// lose them), so there the subscribe reads the store (ChatService makes no cache).
//
// An entry starts before the first store read of its conversation (`prepare`) and gathers every
// commit from then on; the read's answer completes it (`fill`, both by maximum: seqs and read
// marks only grow). So a commit that lands after the read's snapshot but before its answer is
// not lost, and a snapshot taken after the entry started misses nothing from before. An answer
// for an earlier entry of the conversation (dropped meanwhile) carries an older generation and is
// ignored. The entry is dropped when the node's last subscriber of the conversation leaves, so
// the cache holds only conversations someone here is subscribed to.
final class ConversationStateCache: Sendable {
    struct Entry: Equatable {
        let generation: Int
        /// False until a store read has completed it: until then it is not an answer.
        private(set) var ready = false
        private(set) var lastSeq: Int64 = 0
        private(set) var readMarks: [String: Int64] = [:]

        init(generation: Int) { self.generation = generation }

        mutating func committed(seq: Int64) { lastSeq = max(lastSeq, seq) }

        mutating func moved(user: String, to seq: Int64) { readMarks[user] = max(readMarks[user] ?? seq, seq) }

        /// A store read taken after this entry started.
        mutating func fill(lastSeq stored: Int64, readMarks storedMarks: [String: Int64]) {
            lastSeq = max(lastSeq, stored)
            readMarks.merge(storedMarks) { max($0, $1) }
            ready = true
        }
    }

    private let entries = StripedChannels<Entry>()
    private let generations = Atomic<Int>(0)

    /// The conversation's last seq and read marks, when an entry is complete (nil: read the store).
    func state(_ channel: String) -> (lastSeq: Int64, readMarks: [String: Int64])? {
        entries.withEntry(channel) { e in e.ready ? (e.lastSeq, e.readMarks) : nil } ?? nil
    }

    /// Before a store read of the conversation's state, by a subscriber already registered with
    /// the Router: the generation its answer is for.
    func prepare(_ channel: String) -> Int {
        entries.withStripe(channel) { entries in
            if let e = entries[channel] { return e.generation }
            let generation = generations.add(1, ordering: .relaxed).newValue
            entries[channel] = Entry(generation: generation)
            return generation
        }
    }

    /// The answer of a read prepared with `generation`.
    func fill(_ channel: String, generation: Int, lastSeq: Int64, readMarks: [String: Int64]) {
        entries.withEntry(channel) { e in
            if e.generation == generation { e.fill(lastSeq: lastSeq, readMarks: readMarks) }
        }
    }

    /// A send's store answer, before anyone is told of it: the new last seq, and the sender's
    /// mark whenever the store wrote one (also over their own message alone, which is never
    /// announced). A failed answer may hide a commit (a PostgreSQL connection lost after COMMIT):
    /// the entry goes, and the next subscribe reads the store.
    func appended(_ result: Result<AppendResult, StoreError>, _ channel: String) {
        guard case .success(let a) = result else { return drop(channel) }
        guard !a.duplicate else { return }
        entries.withEntry(channel) { e in
            e.committed(seq: a.message.seq)
            if a.senderMarkMoved { e.moved(user: a.message.senderId, to: a.message.seq) }
        }
    }

    /// A `read`'s store answer, before its ack (a failure as for a send).
    func markRead(_ result: Result<ReadResult, StoreError>, _ channel: String, user: String) {
        guard case .success(let r) = result else { return drop(channel) }
        entries.withEntry(channel) { $0.moved(user: user, to: r.mark) }
    }

    /// The node's last subscriber of the conversation left (called under the Router's lock, so
    /// it comes before any later subscriber's `prepare`).
    func drop(_ channel: String) {
        _ = entries.withStripe(channel) { $0.removeValue(forKey: channel) }
    }

    /// Entries held (for tests and stats).
    var count: Int { entries.count }
}
