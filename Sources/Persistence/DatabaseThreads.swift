import CSQLite
import Foundation
import Synchronization
import Core

// The threads that own SQLite connections. Loops never call SQLite: they hand a job to the
// writer or a reader and get the result back through a completion (which they forward to
// their own mailbox).
//
// The writer is one thread with one connection. It takes every job queued since its last
// batch, runs them in ONE transaction (each inside its own savepoint, so one failing job
// does not undo the others), commits once, and only then calls the completions: an
// acknowledgement always means committed. A batch closes when the queue is empty or
// `maxBatch` is reached, so latency stays low when load is low (group commit).

/// A job runs on the database thread and returns what to do once its batch is over; that
/// completion learns whether the batch committed (readers always pass true).
struct DatabaseJob: Sendable {
    /// Returns what to do after the batch, and whether the job failed (its writes are then
    /// rolled back to its savepoint, so a failing job leaves nothing behind).
    let run: @Sendable (SQLiteConnection) -> (completion: DatabaseCompletion, failed: Bool)
    /// Called instead when the job could not run at all (its batch failed before it).
    let abandon: @Sendable () -> Void
}
typealias DatabaseCompletion = @Sendable (_ committed: Bool) -> Void

/// Jobs waiting for a database thread, in two lanes: the one for answers someone waits for
/// (chat sends, reads), and a background lane for bulk bookkeeping nobody waits for (receipts,
/// last-seen times). A batch takes one background job when one waits, after everything else it
/// takes: 2,000 disconnects stored at once then delay a chat send's commit by one small job,
/// not by all of them. The background lane is bounded: past `backgroundBacklog` jobs the next
/// batch takes the excess too, so bookkeeping that outruns one job a transaction (a broadcast
/// storm while sends fill every batch) costs one longer commit, not memory without end.
/// Generic over the job so PostgresStore's threads share it (`JobQueue` is SQLite's).
final class JobQueueOf<Job: Sendable>: Sendable {
    /// Background jobs allowed to wait before a batch takes more than one (100 rows each).
    static var backgroundBacklog: Int { 64 }
    private struct State {
        var items: [Job] = []
        var background: [Job] = []
        var closed = false
    }
    private let jobs = Locked(State())
    private let available = DispatchSemaphore(value: 0)

    func push(_ job: Job, background: Bool = false) -> Bool {
        let accepted = jobs.withLock { state -> Bool in
            guard !state.closed else { return false }
            if background { state.background.append(job) } else { state.items.append(job) }
            return true
        }
        if accepted { available.signal() }
        return accepted
    }

    /// Waits for at least one job and takes up to `max` (see `batch(from:max:)`); nil once
    /// closed and drained.
    func take(max: Int) -> [Job]? {
        while true {
            available.wait()
            let batch = jobs.withLock { state -> [Job]? in
                if state.items.isEmpty && state.background.isEmpty { return state.closed ? nil : [] }
                return Self.batch(from: &state, max: max)
            }
            guard let batch else {
                available.signal() // let other consumers see the close too
                return nil
            }
            if !batch.isEmpty {
                // The semaphore was signalled once per job: consume the extra signals lazily
                // (an empty take just loops).
                return batch
            }
        }
    }

    /// The first lane's jobs, then the background jobs due: one, or the excess over the backlog
    /// bound. Room for those is kept even when the first lane could fill the batch (a lane that
    /// always fills it must not starve the other), except in batches of one job.
    private static func batch(from state: inout State, max: Int) -> [Job] {
        let due = state.background.isEmpty ? 0 : Swift.max(1, state.background.count - backgroundBacklog)
        let reserved = max > 1 ? Swift.min(due, max - 1) : 0
        let n = Swift.min(max - reserved, state.items.count)
        var taken = Array(state.items.prefix(n))
        state.items.removeFirst(n)
        let m = Swift.min(due, max - taken.count)
        taken += state.background.prefix(m)
        state.background.removeFirst(m)
        return taken
    }

    func close() {
        jobs.withLock { $0.closed = true }
        available.signal()
    }

    var count: Int { jobs.withLock { $0.items.count + $0.background.count } }
}

typealias JobQueue = JobQueueOf<DatabaseJob>

/// The writer's counters at one moment (reported as `StoreStatistics`).
struct WriterStatsSnapshot: Sendable {
    let batches: Int
    let jobs: Int
    let largestBatch: Int
    let queued: Int
    /// Checkpoints run by the checkpointer thread.
    let checkpoints: Int
    /// Checkpoints the writer ran itself (starting the WAL over past its cap).
    let writerCheckpoints: Int
}

/// The batch counters every store's writers keep (WriterStats, PGWriterStats).
protocol BatchCounters: Sendable {
    var batches: Atomic<Int> { get }
    var jobs: Atomic<Int> { get }
    var largestBatch: Atomic<Int> { get }
}

extension BatchCounters {
    /// Counts one batch of `count` jobs. The largest batch is raised by compare-exchange:
    /// several writers may count at once, and a load then store could lower it.
    func recordBatch(_ count: Int) {
        batches.add(1, ordering: .relaxed)
        jobs.add(count, ordering: .relaxed)
        var largest = largestBatch.load(ordering: .relaxed)
        while count > largest {
            let (exchanged, current) = largestBatch.compareExchange(expected: largest, desired: count, ordering: .relaxed)
            if exchanged { break }
            largest = current
        }
    }
}

/// Counters the writer keeps for stats and metrics.
final class WriterStats: BatchCounters {
    let batches = Atomic<Int>(0)
    let jobs = Atomic<Int>(0)
    let largestBatch = Atomic<Int>(0)
    /// Checkpoints the checkpointer thread completed.
    let checkpoints = Atomic<Int>(0)
    /// Times the writer started the WAL over itself, past its cap.
    let writerCheckpoints = Atomic<Int>(0)
}

final class DatabaseWriter: Sendable {
    private let queue = JobQueue()
    private let stopped = DispatchGroup()
    let stats = WriterStats()
    static let maxBatch = 512
    /// WAL pages past which the writer starts the WAL over itself (16 MiB at 4 KiB pages), at a
    /// commit that finds the checkpointer idle; at four times this (64 MiB) it waits to.
    static let maxWALPages = 4_096

    /// Opens the connection on the writer's own thread; `setup` runs there first (migrations).
    init(path: String, setup: @escaping @Sendable (SQLiteConnection) throws -> Void) throws {
        let queue = self.queue
        let stats = self.stats
        try DatabaseThread.start("db-writer", stopped: stopped, open: {
            let db = try SQLiteConnection(path: path)
            try setup(db)
            return db
        }, serve: { db in
            // Started once the setup has made the database a WAL file. Without it (it could not
            // open), SQLite's own automatic checkpoint stays in place.
            let checkpointer: DatabaseCheckpointer?
            do {
                checkpointer = try DatabaseCheckpointer(path: path, stats: stats)
            } catch {
                checkpointer = nil
                Log.error("db_checkpointer_unavailable", ["reason": "\(error)", "action": "SQLite checkpoints in the commit"])
            }
            DatabaseWriter.run(db, queue: queue, stats: stats, checkpointer: checkpointer)
        })
    }

    private static func run(_ db: SQLiteConnection, queue: JobQueue, stats: WriterStats, checkpointer: DatabaseCheckpointer?) {
        var requestedAt = 0
        var walPages = 0 // after the last commit, as SQLite's commit hook reports them
        if checkpointer != nil { db.onCommit { walPages = $0 } }
        while let batch = queue.take(max: maxBatch) {
            var completions: [DatabaseCompletion] = []
            completions.reserveCapacity(batch.count)
            var committed = false
            do {
                try db.execute("BEGIN IMMEDIATE")
                for job in batch {
                    // Each job in its own savepoint: a failing job rolls back alone (jobs
                    // catch their own errors and report them through their completion).
                    // (Prepared once and cached: parsing this SQL per job cost more than the job.)
                    try db.statement("SAVEPOINT job").run()
                    let outcome = job.run(db)
                    completions.append(outcome.completion)
                    db.resetStatements()
                    if outcome.failed { try db.statement("ROLLBACK TO job").run() }
                    try db.statement("RELEASE job").run()
                }
                try db.execute("COMMIT")
                committed = true
            } catch {
                // The transaction itself failed (disk full, I/O error): nothing is acknowledged.
                try? db.execute("ROLLBACK")
                Log.error("db_commit_failed", ["jobs": "\(batch.count)", "reason": "\(error)"])
                for job in batch[completions.count...] { completions.append({ _ in job.abandon() }) }
            }
            // Counted before the completions run, so whoever saw an answer sees it counted.
            stats.recordBatch(batch.count)
            for c in completions { c(committed) }
            if let checkpointer {
                checkpoint(db, walPages: walPages, requestedAt: &requestedAt, stats: stats, checkpointer: checkpointer)
            }
        }
        checkpointer?.close()
        try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// After a commit (and its completions: acks leave before any checkpoint work): asks the
    /// checkpointer to copy the WAL back once it has grown by `DatabaseCheckpointer.pages`,
    /// and past `maxWALPages` starts the WAL over here (see `DatabaseCheckpointer`).
    /// `requestedAt`: the WAL's pages when a checkpoint was last asked for (0 after it started over).
    private static func checkpoint(_ db: SQLiteConnection, walPages pages: Int, requestedAt: inout Int, stats: WriterStats,
                                   checkpointer: DatabaseCheckpointer) {
        if pages < requestedAt { requestedAt = 0 } // started over
        var restarted = false
        if pages >= 4 * maxWALPages {
            // The bound, reached only when the RESTARTs below kept finding the checkpointer
            // busy or a reader in the WAL: wait for the checkpointer to finish (it holds the
            // checkpoint lock, which a RESTART does not wait for), then for readers (busy timeout).
            checkpointer.waitUntilIdle()
            restarted = db.checkpoint(SQLITE_CHECKPOINT_RESTART) == SQLITE_OK
        } else if pages >= maxWALPages {
            // A RESTART copies what the checkpointer has not and, once no reader is in the
            // WAL, lets the next commit start it over. Tried at a commit that finds the
            // checkpointer idle (no more requests past the cap), and without waiting for a
            // lock: the checkpointer runs at batch priority, and a writer waiting in SQLite's
            // busy handler (which sleeps up to 100 ms at a time) stalled every ack and push
            // for 300 ms under load. Busy (a reader in the WAL): the next commit tries again.
            restarted = checkpointer.isIdle && db.checkpointWithoutWaiting(SQLITE_CHECKPOINT_RESTART) == SQLITE_OK
        } else if pages - requestedAt >= DatabaseCheckpointer.pages {
            checkpointer.request()
            requestedAt = pages
        }
        if restarted {
            stats.writerCheckpoints.add(1, ordering: .relaxed)
            requestedAt = 0
        }
    }

    /// Queues a job (`background`: bulk bookkeeping, see `JobQueue`); false once the writer is closing.
    func submit(_ job: DatabaseJob, background: Bool = false) -> Bool { queue.push(job, background: background) }

    var queueDepth: Int { queue.count }

    /// Finishes every queued job, checkpoints the WAL, closes the connection and stops the
    /// thread: when this returns, the writer has no file open. Calling it again returns at once.
    func close() {
        queue.close()
        stopped.wait()
    }
}

/// A small pool of reader threads, each with its own read-only connection (WAL lets them read
/// while the writer writes).
final class DatabaseReaders: Sendable {
    private let queue = JobQueue()
    private let stopped = DispatchGroup()

    init(path: String, count: Int) throws {
        let queue = self.queue
        for i in 0..<count {
            do {
                try DatabaseThread.start("db-reader-\(i)", stopped: stopped, open: {
                    try SQLiteConnection(path: path, readOnly: true)
                }, serve: { db in
                    while let batch = queue.take(max: 1) {
                        for job in batch {
                            let outcome = job.run(db)
                            db.resetStatements() // end the read snapshot
                            outcome.completion(true)
                        }
                    }
                })
            } catch {
                close() // the readers already started
                throw error
            }
        }
    }

    func submit(_ job: DatabaseJob) -> Bool { queue.push(job) }

    /// Runs the reads already queued, then closes every reader's connection and waits for
    /// the threads to stop.
    func close() {
        queue.close()
        stopped.wait()
    }
}

enum DatabaseThread {
    /// Starts a thread that opens its own connection and serves with it until `serve`
    /// returns. The thread is in `stopped` from now until its connection is closed, so a
    /// `stopped.wait()` returns only once the file is no longer open (and again at once
    /// after). Throws what opening threw (the thread then leaves `stopped` as it ends).
    static func start<Connection>(_ name: String, stopped: DispatchGroup, open: @escaping @Sendable () throws -> Connection,
                                  serve: @escaping @Sendable (Connection) -> Void) throws {
        let opened = DispatchSemaphore(value: 0)
        let failure = Locked<Error?>(nil)
        stopped.enter()
        startThread(named: name) {
            yieldToEventLoops()
            openAndServe(open, serve, opened: opened, failure: failure)
            stopped.leave()
        }
        opened.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// The connection is a local of this call, so it is released (closed) when the call returns.
    private static func openAndServe<Connection>(_ open: () throws -> Connection, _ serve: (Connection) -> Void,
                                                 opened: DispatchSemaphore, failure: Locked<Error?>) {
        let db: Connection
        do {
            db = try open()
        } catch {
            failure.withLock { $0 = error }
            opened.signal()
            return
        }
        opened.signal()
        serve(db)
    }

    /// Marks the calling database thread SCHED_BATCH: a job queued by an event loop then no
    /// longer preempts that loop at once (two context switches per query while clients
    /// connect); the thread runs when the loop waits or its time slice ends, and finds the
    /// jobs queued meanwhile together, which is also what group commit wants. Measured with
    /// the loops and the database threads sharing one core (the benchmark setup).
    static func yieldToEventLoops() {
        var param = sched_param()
        param.sched_priority = 0
        let schedBatch: Int32 = 3 // SCHED_BATCH in <sched.h> (behind _GNU_SOURCE, so not imported)
        _ = sched_setscheduler(0, schedBatch, &param)
    }
}

