import Core

// When each connection of one loop writes: the turn's flush list, the connections the turn's
// time budget did not reach (kept-up ones first, then the carried list), and which connections
// wait for EPOLLOUT instead. Each connection's `FlushMark` says where it stands; only this file
// changes it. Confined to its loop's thread.
//
// A class, not a struct held by the loop: flushing a connection can schedule writes again
// (a TLS close_notify, a handler answering `didDrain`), which must not overlap an access to
// the scheduler that is still in progress.

/// Where a connection stands in its loop's write scheduling.
struct FlushMark {
    /// Output waits for a flush (cleared when the connection flushes)...
    fileprivate(set) var queued = false
    /// ...and the connection is on this turn's flush list, or on the list of writes carried
    /// over from earlier turns (each at most once). A listed connection may have been written
    /// already (`writeNow`); the flush pass then passes it by unless it queued more since.
    fileprivate(set) var listed = false
    fileprivate(set) var carried = false
    /// The socket refused output and the loop waits for EPOLLOUT to write the rest.
    fileprivate(set) var polling = false
}

final class WriteScheduler {
    private var pending: [Connection] = []
    /// A spare buffer swapped with the flush list, so taking it allocates nothing.
    private var spare: [Connection] = []
    /// Connections scheduled in an earlier turn that the flush budget did not reach. They are
    /// written after the turn's newly scheduled ones, so a burst of writes to thousands of
    /// sockets (new subscribers whose windows are still open) is spread over short turns
    /// instead of making everyone on the loop wait for the whole burst. A carried connection
    /// that gets new output joins the turn's list again, in its place (see `schedule`): a
    /// subscriber the budget missed once is not left behind everyone carried before it.
    private var carried: FIFO<Connection>
    /// Connections the budget missed that had kept up until this turn (all written before, so
    /// not carried): the first `keptUpPerTurn` of them, in the turn's order, are written
    /// right after the budget, before the carried list. Otherwise a reader already there, just
    /// past the budget, joined the back of a carried list that a burst of newcomers had
    /// filled, and waited for all of it: the last few of 100 good readers in the slow-consumer
    /// test waited 60–75 ms behind ~1,000 stuck newcomers. Bounded, so the carried list still
    /// gets its `carriedPerTurn` every turn.
    private var keptUp: [Connection] = []
    private let budgetMicros: Int64
    private let carriedPerTurn: Int
    private let keptUpPerTurn: Int

    init(limits: EngineLimits) {
        carried = FIFO(keepingCapacity: limits.loopListCapacity)
        budgetMicros = limits.flushBudgetMicros
        carriedPerTurn = limits.carriedPerTurn
        keptUpPerTurn = limits.keptUpPerTurn
    }

    /// Something waits for this turn's flush pass.
    var hasWork: Bool { !pending.isEmpty || !carried.isEmpty }

    /// `c` has new output: it joins this turn's list, unless it is on it already or waits for
    /// EPOLLOUT. A connection carried from an earlier turn joins again: its new frames are
    /// written in the order they were queued, not after everyone carried before it.
    func schedule(_ c: Connection) {
        guard !c.flushMark.polling else { return }
        c.flushMark.queued = true
        guard !c.flushMark.listed else { return }
        c.flushMark.listed = true
        pending.append(c)
    }

    /// Writes what `c`'s socket takes now (the flush pass, or EPOLLOUT).
    func write(_ c: Connection) {
        c.flushMark.queued = false
        c.flush()
    }

    /// Writes `c` now instead of at the end of the turn, if it has output waiting and is not
    /// waiting for EPOLLOUT: a fan-out writes each subscriber as soon as its pushes are queued,
    /// so the first readers have theirs while the loop is still queueing the others'.
    func writeNow(_ c: Connection) {
        if c.flushMark.queued { write(c) }
    }

    /// The loop asked epoll for EPOLLOUT on `c` (true) or stopped asking (false).
    func setPolling(_ c: Connection, _ on: Bool) { c.flushMark.polling = on }

    /// Writes what the turn queued, in the order it was queued (a publish reaches the oldest
    /// subscribers first), then connections carried from earlier turns, within a time budget.
    func flushPending() {
        let deadline = monotonicMicros() + budgetMicros
        // Newly scheduled first; flushing can schedule more (a TLS close_notify): until quiet.
        while !pending.isEmpty {
            var batch = spare
            spare = []
            swap(&pending, &batch)
            var overBudget = false
            for c in batch {
                c.flushMark.listed = false
                guard c.flushMark.queued else { continue } // written since it was listed (`writeNow`)
                if overBudget {
                    if !c.flushMark.carried {
                        c.flushMark.carried = true
                        if keptUp.count < keptUpPerTurn { keptUp.append(c) } else { carried.append(c) }
                    }
                    continue
                }
                write(c)
                overBudget = monotonicMicros() >= deadline
            }
            batch.removeAll(keepingCapacity: true)
            spare = batch
        }
        // Then the few the budget missed that had kept up until now, in the turn's order...
        for c in keptUp {
            c.flushMark.carried = false
            if c.flushMark.queued { write(c) }
        }
        keptUp.removeAll(keepingCapacity: true)
        // ...then the carried ones: at least `carriedPerTurn`, more while the budget lasts.
        var written = 0
        while written < carriedPerTurn || monotonicMicros() < deadline, let c = carried.popFirst() {
            c.flushMark.carried = false
            if c.flushMark.queued {
                write(c)
                written += 1
            }
        }
    }
}
