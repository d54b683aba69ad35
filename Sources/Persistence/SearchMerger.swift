import Foundation
import Synchronization
import Core

/// When the search index's tail is merged (SQLiteStore+Search.swift): a send writes only its
/// `search_documents` row, an append at the b-tree's right edge; the postings of the documents
/// past the watermark go into `search_postings` later, up to `batch` documents per transaction
/// sorted by term, so each page of the term b-tree is written once per merge instead of once per
/// message (per-message postings dirtied pages all over it: the WAL grew by messages × terms).
/// A merge is a background job on the writer (behind the sends of its batch); it starts when
/// the tail reaches `threshold` documents or, on the idle timer, when any are waiting. One
/// merge is one transaction: a stop between merges (or a crash in one) leaves the tail as it
/// is, and searches read it, so nothing is lost and the next start merges it.
final class SearchMerger: Sendable {
    /// Documents a merge moves in one transaction.
    static let batch = 2_000
    /// Tail documents that start a merge without waiting for the idle timer.
    static let threshold = 1_000
    /// How often the idle timer looks for documents to merge.
    static let idleInterval: DispatchTimeInterval = .milliseconds(500)

    /// Runs one merge as a writer job and calls back with the documents merged (nil: failed).
    typealias Job = @Sendable (_ done: @escaping @Sendable (Int?) -> Void) -> Void

    /// Documents written to the tail since the last merge that emptied it (an estimate: a send
    /// rolled back still counts, which only merges sooner).
    private let unmerged = Atomic<Int>(0)
    private let queued = Atomic<Bool>(false)
    private let paused = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let job = Locked<Job?>(nil)

    /// The documents a previous run left unmerged (set when the writer opens).
    var leftUnmerged: Int {
        get { unmerged.load(ordering: .relaxed) }
        set { unmerged.store(newValue, ordering: .relaxed) }
    }

    /// Starts the idle timer; `job` runs each merge.
    func start(_ job: @escaping Job) {
        self.job.withLock { $0 = job }
        scheduleTick()
    }

    /// Stops starting merges (a queued one still runs: the writer finishes its queue).
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Tests: no merge starts by itself (`SQLiteStore.mergeSearchTail` still merges).
    func pause() { paused.store(true, ordering: .relaxed) }

    /// A document joined the tail (on the writer, inside its job).
    func documentAdded() {
        if unmerged.add(1, ordering: .relaxed).newValue >= Self.threshold { requestMerge() }
    }

    private func requestMerge() {
        guard !paused.load(ordering: .relaxed), !stopped.load(ordering: .relaxed),
              queued.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        guard let job = job.withLock({ $0 }) else { return queued.store(false, ordering: .relaxed) }
        job { [self] merged in
            // Runs right after the merge's commit, before the writer's next batch: no send
            // wrote to the tail in between.
            queued.store(false, ordering: .relaxed)
            guard let merged else { return } // failed: the idle timer tries again
            if merged < Self.batch { unmerged.store(0, ordering: .relaxed) } else { requestMerge() }
        }
    }

    private func scheduleTick() {
        DispatchQueue.global().asyncAfter(deadline: .now() + Self.idleInterval) { [self] in
            guard !stopped.load(ordering: .relaxed) else { return }
            if unmerged.load(ordering: .relaxed) > 0 { requestMerge() }
            scheduleTick()
        }
    }
}
