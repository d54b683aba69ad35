import Foundation
import Synchronization

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
// rarely allows, so the writer does it itself past a cap (`DatabaseWriter.maxWALPages`), at a
// commit that finds the checkpointer idle: the RESTART then has only the pages committed since
// the checkpointer's last copy to copy, and no lock of the checkpointer's to wait for.
final class DatabaseCheckpointer: Sendable {
    /// WAL pages after a commit that ask for a checkpoint (SQLite's own default threshold).
    static let pages = 1_000

    private let wanted = DispatchSemaphore(value: 0)
    private let requested = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(false)
    /// Checkpoints run (each one PASSIVE, whatever it found to copy).
    let checkpoints = Atomic<Int>(0)

    init(path: String) throws {
        try DatabaseThread.start("db-checkpoint", open: {
            let db = try SQLiteConnection(path: path)
            // A connection's own setting: NORMAL syncs the WAL before copying and the database
            // file after, which is what makes the copied pages durable.
            try db.execute("PRAGMA synchronous = NORMAL")
            return db
        }, serve: { [self] db in
            while true {
                wanted.wait()
                if stopping.load(ordering: .acquiring) { return }
                running.store(true, ordering: .releasing)
                requested.store(false, ordering: .releasing)
                // A failure (an I/O error) leaves the pages in the WAL, where they are safe;
                // the next request tries again, and the writer's cap still holds.
                try? db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                checkpoints.add(1, ordering: .relaxed)
                running.store(false, ordering: .releasing)
            }
        }, finished: { [stopped] in stopped.signal() })
    }

    /// Neither running a checkpoint nor asked for one.
    var isIdle: Bool { !running.load(ordering: .acquiring) && !requested.load(ordering: .acquiring) }

    /// Asks for a checkpoint soon. Requests made before it starts count as one.
    func request() {
        guard !requested.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wanted.signal()
    }

    /// Lets a checkpoint in progress finish, then closes the connection and stops the thread.
    func close() {
        stopping.store(true, ordering: .releasing)
        wanted.signal()
        stopped.wait()
    }
}
