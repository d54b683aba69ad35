import CSQLite
import Foundation
import Synchronization
import Core

// Copies committed pages from the WAL back into the database file, on its own thread and
// connection, so that no commit waits for it.
//
// Why: SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000
// pages. With one message per commit that was every ~200 commits, and the checkpoint's copying
// and two fsyncs stalled the writer ~5 ms each time, with every ack and push queued behind it
// (measured: delivery p99 4.7 ms against 0.8 ms between stalls, at 1,000 sends/s).
//
// A PASSIVE checkpoint from another connection never blocks the writer: it copies what was
// committed when it started while the writer keeps appending. SQLite starts the WAL over
// only at a transaction that begins once everything is copied, which a steady stream of commits
// rarely allows, so the writer does it itself past a cap (`DatabaseWriter.maxWALPages`): it asks
// for a checkpoint every 1,000 pages on the way there, and at the cap stops asking and waits for
// a commit that finds the checkpointer idle. The RESTART then copies only what was committed
// since the checkpointer's last copy began (at most ~1,000 pages), and never waits for a lock of
// the checkpointer's.
final class DatabaseCheckpointer: Sendable {
    /// WAL pages after a commit that ask for a checkpoint (SQLite's own default threshold).
    static let pages = 1_000

    private let wanted = DispatchSemaphore(value: 0)
    private let requested = Atomic<Bool>(false)
    private let running = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchGroup()

    /// Counts in `stats.checkpoints` the checkpoints that completed (SQLITE_OK), whatever they
    /// found to copy.
    init(path: String, stats: WriterStats) throws {
        try DatabaseThread.start("db-checkpoint", stopped: stopped, open: {
            let db = try SQLiteConnection(path: path)
            // Each connection has its own setting. FULL (the default) would be as safe; NORMAL
            // is what the writer uses (the WAL is synced before pages are copied, the database
            // file after).
            try db.execute("PRAGMA synchronous = NORMAL")
            return db
        }, serve: { [self] db in
            while true {
                wanted.wait()
                if stopping.load(ordering: .acquiring) { return }
                running.store(true, ordering: .sequentiallyConsistent)
                requested.store(false, ordering: .sequentiallyConsistent)
                switch db.checkpoint(SQLITE_CHECKPOINT_PASSIVE) {
                case SQLITE_OK:
                    stats.checkpoints.add(1, ordering: .relaxed)
                case SQLITE_BUSY:
                    break // the writer's RESTART holds the checkpoint lock: it copies instead
                case let rc:
                    // An I/O error: the pages stay in the WAL, where they are safe; the next
                    // request tries again, and the writer's cap still holds.
                    Log.error("db_checkpoint_failed", ["code": "\(rc)", "reason": String(cString: sqlite3_errmsg(db.handle))])
                }
                running.store(false, ordering: .sequentiallyConsistent)
            }
        })
    }

    /// Neither running a checkpoint nor asked for one.
    var isIdle: Bool { !requested.load(ordering: .sequentiallyConsistent) && !running.load(ordering: .sequentiallyConsistent) }

    /// Asks for a checkpoint soon. Requests made before it starts count as one.
    func request() {
        guard !requested.exchange(true, ordering: .sequentiallyConsistent) else { return }
        wanted.signal()
    }

    /// Waits until no checkpoint runs or is asked for (the writer, before a RESTART that must
    /// not find the checkpoint lock taken). Polls: this is the rare path past four times the cap.
    func waitUntilIdle() {
        while !isIdle { usleep(200) }
    }

    /// Lets a checkpoint in progress finish, then closes the connection and stops the thread.
    func close() {
        stopping.store(true, ordering: .releasing)
        wanted.signal()
        stopped.wait()
    }
}
