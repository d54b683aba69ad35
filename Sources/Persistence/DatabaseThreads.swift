import Foundation
import Synchronization

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

final class JobQueue: Sendable {
    private let jobs = Locked<(items: [DatabaseJob], closed: Bool)>(([], false))
    private let available = DispatchSemaphore(value: 0)

    func push(_ job: DatabaseJob) -> Bool {
        let accepted = jobs.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.items.append(job)
            return true
        }
        if accepted { available.signal() }
        return accepted
    }

    /// Waits for at least one job and takes up to `max`; nil once closed and drained.
    func take(max: Int) -> [DatabaseJob]? {
        while true {
            available.wait()
            let batch = jobs.withLock { state -> [DatabaseJob]? in
                if state.items.isEmpty { return state.closed ? nil : [] }
                let n = min(max, state.items.count)
                let taken = Array(state.items.prefix(n))
                state.items.removeFirst(n)
                return taken
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

    func close() {
        jobs.withLock { $0.closed = true }
        available.signal()
    }

    var count: Int { jobs.withLock { $0.items.count } }
}

/// Counters the writer keeps for stats and metrics.
final class WriterStats: Sendable {
    let batches = Atomic<Int>(0)
    let jobs = Atomic<Int>(0)
    let largestBatch = Atomic<Int>(0)
}

final class DatabaseWriter: Sendable {
    private let queue = JobQueue()
    private let done = DispatchSemaphore(value: 0)
    let stats = WriterStats()
    static let maxBatch = 512

    /// Opens the connection on the writer's own thread; `setup` runs there first (migrations).
    init(path: String, setup: @escaping @Sendable (SQLiteConnection) throws -> Void) throws {
        let queue = self.queue
        let stats = self.stats
        let done = self.done
        try DatabaseThread.start("db-writer", open: {
            let db = try SQLiteConnection(path: path)
            try setup(db)
            return db
        }, serve: { db in
            DatabaseWriter.run(db, queue: queue, stats: stats)
        }, finished: { done.signal() })
    }

    private static func run(_ db: SQLiteConnection, queue: JobQueue, stats: WriterStats) {
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
                FileHandle.standardError.write(Data("level=error event=db_commit_failed jobs=\(batch.count) reason=\"\(error)\"\n".utf8))
                for job in batch[completions.count...] { completions.append({ _ in job.abandon() }) }
            }
            // Counted before the completions run, so whoever saw an answer sees it counted.
            stats.batches.add(1, ordering: .relaxed)
            stats.jobs.add(batch.count, ordering: .relaxed)
            if batch.count > stats.largestBatch.load(ordering: .relaxed) {
                stats.largestBatch.store(batch.count, ordering: .relaxed)
            }
            for c in completions { c(committed) }
        }
        try? db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Queues a job; false once the writer is closing.
    func submit(_ job: DatabaseJob) -> Bool { queue.push(job) }

    var queueDepth: Int { queue.count }

    /// Finishes every queued job, checkpoints the WAL, closes the connection and stops the
    /// thread: when this returns, the writer has no file open.
    func close() {
        queue.close()
        done.wait()
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
            stopped.enter()
            do {
                try DatabaseThread.start("db-reader-\(i)", open: {
                    try SQLiteConnection(path: path, readOnly: true)
                }, serve: { db in
                    while let batch = queue.take(max: 1) {
                        for job in batch {
                            let outcome = job.run(db)
                            db.resetStatements() // end the read snapshot
                            outcome.completion(true)
                        }
                    }
                }, finished: { [stopped] in stopped.leave() })
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
    /// returns. The connection never leaves that thread, and it is closed before `finished`
    /// runs, so whoever waits for `finished` knows the file is no longer open. Throws what
    /// opening threw (`finished` has then run already).
    static func start(_ name: String, open: @escaping @Sendable () throws -> SQLiteConnection,
                      serve: @escaping @Sendable (SQLiteConnection) -> Void,
                      finished: @escaping @Sendable () -> Void) throws {
        let opened = DispatchSemaphore(value: 0)
        let failure = Locked<Error?>(nil)
        let thread = Thread {
            yieldToEventLoops()
            openAndServe(open, serve, opened: opened, failure: failure)
            finished()
        }
        thread.name = name
        thread.start()
        opened.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// The connection is a local of this call, so it is released (closed) when the call returns.
    private static func openAndServe(_ open: () throws -> SQLiteConnection, _ serve: (SQLiteConnection) -> Void,
                                     opened: DispatchSemaphore, failure: Locked<Error?>) {
        let db: SQLiteConnection
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

