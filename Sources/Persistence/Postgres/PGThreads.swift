import Foundation
import Synchronization
import Core

// The threads that own PostgresStore's connections. K writer threads, each with its own queue,
// run batches of jobs in one transaction each (group commit), in parallel; COMMIT itself is
// sent under the store's commit baton, and the batch's completions are handed to the one
// completion thread before the baton is released: completions run one at a time, in commit
// order, on one thread (the Store contract), whichever writer committed.
//
// A job goes to the writer its lock key hashes to: the jobs of one conversation run on one
// writer in submission order (never two writers queueing on one row lock), and jobs without a
// key (users, notifications, bookkeeping) all run on one writer, in submission order, so a job
// sees every keyless write submitted before it, queued or committed (NotificationStore's
// strict createNotifications relies on it).
//
// Per-job isolation without a savepoint per job: a job whose body fails (its error is its
// answer) makes the batch roll back and run again without it; closures are pure, so running
// the others again is safe. Any other error before COMMIT (a deadlock, a serialization
// failure, a lost connection) runs the whole batch again, on a new connection if need be, at
// most `maxRetries` times; then every job of the batch is answered `.unavailable`. A COMMIT in
// flight is never retried: its outcome is unknown, so its jobs are answered `.unavailable`,
// never acked.

/// A job runs on a database thread and returns what to do once its transaction is over.
struct PGJob: Sendable {
    /// The row the job locks first (a conversation's key): it picks the job's writer, and a
    /// batch runs its jobs sorted by it (stable: a key keeps its queue order), so the rows of
    /// one batch are locked in one order.
    let lockKey: String?
    /// Users whose unread lock the job takes (PostgresStore.lockUnread): a batch takes all of
    /// its jobs' at its start, in one stripe order, so two writers' batches (on this node or
    /// another) never each hold a stripe the other waits for. A job that cannot name them
    /// before it runs takes them as it goes (a rare deadlock: the batch runs again).
    var unreadUsers: [String] = []
    let run: @Sendable (PGConnection) -> PGJobOutcome
    /// Called instead when the job could not run (connection lost, retries spent).
    let abandon: @Sendable (StoreError) -> Void
}

enum PGJobOutcome: Sendable {
    /// The completion learns whether the transaction committed. `failed`: the body's error is
    /// its answer, and its writes must not stay.
    case done(completion: @Sendable (_ committed: Bool) -> Void, failed: Bool)
    /// The connection broke or the transaction must be retried (deadlock, serialization).
    case infrastructure(PGError)
}

/// Runs completions one at a time, in the order they were queued, on one thread.
final class PGCompletionThread: Sendable {
    private let queue = Locked<(items: [@Sendable () -> Void], closed: Bool)>(([], false))
    private let available = DispatchSemaphore(value: 0)
    private let stopped = DispatchGroup()

    init() {
        stopped.enter()
        startThread(named: "pg-completions") { [queue, available, stopped] in
            var closed = false
            while true {
                if !closed { available.wait() }
                let items: [@Sendable () -> Void]
                (items, closed) = queue.withLock { state in
                    defer { state.items = [] }
                    return (state.items, state.closed)
                }
                for item in items { item() }
                if closed && items.isEmpty { break }
            }
            stopped.leave()
        }
    }

    func enqueue(_ items: [@Sendable () -> Void]) {
        guard !items.isEmpty else { return }
        queue.withLock { $0.items += items }
        available.signal()
    }

    /// Runs what is queued, then stops the thread.
    func close() {
        queue.withLock { $0.closed = true }
        available.signal()
        stopped.wait()
    }
}

/// Counters the writers keep for stats and metrics.
final class PGWriterStats: BatchCounters {
    let batches = Atomic<Int>(0)
    let jobs = Atomic<Int>(0)
    let largestBatch = Atomic<Int>(0)
    let retries = Atomic<Int>(0)
    let reconnects = Atomic<Int>(0)
    /// Microseconds writers waited for the commit baton, and held it.
    let commitWaitMicros = Atomic<Int>(0)
    let commitMicros = Atomic<Int>(0)
}

final class PGWriters: Sendable {
    static let maxBatch = 64
    static let maxRetries = 3
    let queues: [JobQueueOf<PGJob>]
    let stats = PGWriterStats()
    private let stopped = DispatchGroup()
    private let baton = Locked(())
    let completions: PGCompletionThread

    /// Starts `count` writers; each connects on its own thread first (throws the first failure).
    init(url: String, count: Int, completions: PGCompletionThread) throws {
        self.completions = completions
        queues = (0..<count).map { _ in JobQueueOf<PGJob>() }
        for i in 0..<count {
            let queue = queues[i]
            do {
                try DatabaseThread.start("pg-writer-\(i)", stopped: stopped, open: { try Self.connect(url) },
                                         serve: { [self] db in serve(db, queue: queue, url: url) })
            } catch {
                close()
                throw error
            }
        }
    }

    func submit(_ job: PGJob, background: Bool) -> Bool {
        queues[Int(Self.fnv1a(job.lockKey ?? "") % UInt64(queues.count))].push(job, background: background)
    }

    var queued: Int { queues.reduce(0) { $0 + $1.count } }

    /// Finishes the queued jobs and stops the writers (the completion thread is the store's).
    func close() {
        queues.forEach { $0.close() }
        stopped.wait()
    }

    /// FNV-1a 64: a fixed hash (Swift's Hasher is seeded per process).
    static func fnv1a(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    private func serve(_ first: PGConnection, queue: JobQueueOf<PGJob>, url: String) {
        var db = first
        while let taken = queue.take(max: Self.maxBatch) {
            if !db.isConnected {
                guard let fresh = reconnect(url) else {
                    abandon(taken, failed: [:], .unavailable("storage unavailable"))
                    continue
                }
                db = fresh
            }
            let batch = taken.enumerated().sorted { ($0.element.lockKey ?? "", $0.offset) < ($1.element.lockKey ?? "", $1.offset) }
                .map(\.element)
            // Counted before the completions run, so whoever saw an answer sees it counted.
            stats.recordBatch(batch.count)
            run(batch, on: &db, url: url)
        }
        db.close()
    }

    /// A writer's connection, with a totals stripe of its own.
    private static func connect(_ url: String, timeout: Double = 10) throws(PGError) -> PGConnection {
        let db = try PGConnection(url: url, connectTimeout: timeout)
        try PGSchema.claimStripe(db)
        return db
    }

    /// One attempt; after a failure the writer pauses a little so a server that is down does
    /// not make it spin (the jobs meanwhile wait in the queue, and are answered as they come).
    private func reconnect(_ url: String) -> PGConnection? {
        stats.reconnects.add(1, ordering: .relaxed)
        do {
            return try Self.connect(url, timeout: 5)
        } catch {
            Log.error("pg_writer_reconnect_failed", ["reason": "\(error)"])
            Thread.sleep(forTimeInterval: 0.2)
            return nil
        }
    }

    /// Runs the batch to its end: committed, or every job answered. One retry rule: an error
    /// before COMMIT is sent (a deadlock, a lost connection, a failed rollback) runs the batch
    /// again, on a new connection when the old one is lost and after a rollback otherwise,
    /// while `attempts < maxRetries`; bodies are pure, so running them again is safe. After
    /// that the batch is abandoned. A COMMIT in flight is never retried (see `commit`).
    private func run(_ batch: [PGJob], on db: inout PGConnection, url: String) {
        // Index in `batch` → the failed job's completion (its body's error is its answer).
        var failed: [Int: @Sendable (Bool) -> Void] = [:]
        var attempts = 0
        while true {
            let done: [(Int, @Sendable (Bool) -> Void)]
            do {
                // nil: a job failed and was rolled back; the batch runs again without it.
                guard let ran = try attempt(batch, failed: &failed, on: db) else { continue }
                done = ran
            } catch {
                let lost = (error as? PGError)?.isConnectionLost ?? false
                if attempts < Self.maxRetries, recover(&db, lost: lost, url: url) {
                    attempts += 1
                    stats.retries.add(1, ordering: .relaxed)
                    continue
                }
                if !lost { _ = rollback(db) }
                Log.error("pg_batch_failed", ["jobs": "\(batch.count)", "reason": "\(error)"])
                return abandon(batch, failed: failed, .unavailable("storage unavailable"))
            }
            return commit(db, batch: batch, done: done, failed: failed)
        }
    }

    /// One run of the batch's bodies (those not failed) in a transaction left open for COMMIT;
    /// returns their completions, or nil when a body failed (recorded in `failed`, rolled back).
    /// Throws on anything that makes the transaction unusable.
    private func attempt(_ batch: [PGJob], failed: inout [Int: @Sendable (Bool) -> Void],
                         on db: PGConnection) throws -> [(Int, @Sendable (Bool) -> Void)]? {
        try db.execute("BEGIN")
        db.unreadLocked = []
        try PostgresStore.lockUnread(db, users: batch.enumerated().flatMap { failed[$0.offset] == nil ? $0.element.unreadUsers : [] })
        var done: [(Int, @Sendable (Bool) -> Void)] = []
        for (i, job) in batch.enumerated() where failed[i] == nil {
            switch job.run(db) {
            case .done(let completion, failed: false):
                done.append((i, completion))
            case .done(let completion, failed: true):
                failed[i] = completion
                guard rollback(db) else { throw PGError(kind: .connectionLost, message: "rollback failed") }
                return nil
            case .infrastructure(let error):
                throw error
            }
        }
        return done
    }

    /// Makes `db` ready to run the batch again: rolled back, or a new connection when the old
    /// one is lost (or will not roll back). False when no connection could be had.
    private func recover(_ db: inout PGConnection, lost: Bool, url: String) -> Bool {
        if !lost && rollback(db) { return true }
        db.close()
        guard let fresh = reconnect(url) else { return false }
        db = fresh
        return true
    }

    /// COMMIT under the baton, and the completions queued in the batch's order before it is released.
    private func commit(_ db: PGConnection, batch: [PGJob], done: [(Int, @Sendable (Bool) -> Void)],
                        failed: [Int: @Sendable (Bool) -> Void]) {
        let asked = DispatchTime.now().uptimeNanoseconds
        baton.withLock { _ in
            let got = DispatchTime.now().uptimeNanoseconds
            let committed = commitNow(db, jobs: batch.count)
            let ended = DispatchTime.now().uptimeNanoseconds
            stats.commitWaitMicros.add(Int((got - asked) / 1_000), ordering: .relaxed)
            stats.commitMicros.add(Int((ended - got) / 1_000), ordering: .relaxed)
            var byIndex = failed
            for (i, c) in done { byIndex[i] = c }
            var ordered: [@Sendable () -> Void] = []
            for i in byIndex.keys.sorted() {
                if let c = byIndex[i] { ordered.append { c(committed) } }
            }
            completions.enqueue(ordered)
        }
    }

    private func commitNow(_ db: PGConnection, jobs: Int) -> Bool {
        do throws(PGError) {
            try db.execute("COMMIT")
            return true
        } catch {
            if !error.isConnectionLost { _ = rollback(db) }
            Log.error("pg_commit_failed", ["jobs": "\(jobs)", "reason": "\(error)"])
            return false
        }
    }

    private func rollback(_ db: PGConnection) -> Bool {
        guard db.isConnected else { return false }
        do { try db.execute("ROLLBACK") } catch { return false }
        return true
    }

    /// Nothing of the batch committed: failed jobs give their own answer (as uncommitted), the
    /// others `error`, in the batch's order on the completion thread.
    private func abandon(_ batch: [PGJob], failed: [Int: @Sendable (Bool) -> Void], _ error: StoreError) {
        completions.enqueue(batch.indices.map { i in
            if let c = failed[i] { return { c(false) } }
            let job = batch[i]
            return { job.abandon(error) }
        })
    }
}

/// A few reader threads, each with its own connection; each read runs in one REPEATABLE READ
/// READ ONLY transaction (one snapshot).
final class PGReaders: Sendable {
    let queue = JobQueueOf<PGJob>()
    private let stopped = DispatchGroup()

    init(url: String, count: Int) {
        for i in 0..<count {
            stopped.enter()
            let queue = self.queue
            let stopped = self.stopped
            startThread(named: "pg-reader-\(i)") {
                DatabaseThread.yieldToEventLoops()
                var db: PGConnection?
                while let batch = queue.take(max: 1) {
                    for job in batch { db = Self.serve(job, db, url: url) }
                }
                db?.close()
                stopped.leave()
            }
        }
    }

    /// Runs one read; returns the connection to keep (nil when it broke). A read whose
    /// connection broke (found dead at BEGIN, or lost during the read) runs once more on a new
    /// one: reads are pure.
    private static func serve(_ job: PGJob, _ current: PGConnection?, url: String) -> PGConnection? {
        var db = current
        for _ in 0..<2 {
            if db?.isConnected != true {
                db = try? PGConnection(url: url, connectTimeout: 5)
            }
            guard let conn = db else { break }
            do {
                try conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            } catch {
                conn.close()
                db = nil
                continue
            }
            switch job.run(conn) {
            case .done(let completion, _):
                _ = try? conn.execute("COMMIT")
                completion(true)
                return conn.isConnected ? conn : nil
            case .infrastructure:
                if conn.isConnected { _ = try? conn.execute("ROLLBACK") }
                conn.close()
                db = nil
            }
        }
        job.abandon(.unavailable("storage unavailable"))
        return nil
    }

    func submit(_ job: PGJob) -> Bool { queue.push(job) }

    func close() {
        queue.close()
        stopped.wait()
    }
}
