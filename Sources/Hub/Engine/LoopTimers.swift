// One-shot timers of one loop, with millisecond deadlines, in a binary min-heap. The loop
// sleeps in epoll_wait at most until the earliest deadline and fires due timers after each
// batch of events. Meant for a handful of timers per loop (a Redis client's reconnect, probe
// and connect deadlines, gap waits), not one per connection: connections use the sweep.
// Loop thread only.

/// Names a scheduled timer, for `EventLoop.cancel`.
struct TimerID: Hashable, Sendable {
    let value: UInt64
}

struct LoopTimers {
    private struct Entry {
        let deadline: Int64
        /// Scheduling order: timers with one deadline fire in the order they were set.
        let id: UInt64
        func fires(before other: Entry) -> Bool {
            deadline != other.deadline ? deadline < other.deadline : id < other.id
        }
    }

    private var heap: [Entry] = []
    private var bodies: [UInt64: (EventLoop) -> Void] = [:]
    private var lastID: UInt64 = 0

    /// The earliest deadline of a timer still scheduled (a cancelled one may sit at the top
    /// until it is due; firing it is then a no-op).
    var nextDeadline: Int64? { heap.first?.deadline }

    mutating func add(deadline: Int64, _ body: @escaping (EventLoop) -> Void) -> TimerID {
        lastID += 1
        bodies[lastID] = body
        heap.append(Entry(deadline: deadline, id: lastID))
        siftUp(heap.count - 1)
        return TimerID(value: lastID)
    }

    mutating func cancel(_ t: TimerID) { bodies[t.value] = nil }

    /// Takes every timer due at `now`, earliest first, for the loop to run (outside this
    /// struct, since a body may set or cancel timers). A timer a body sets that is already due
    /// waits for the next turn, so a body re-arming itself at 0 ms cannot spin the loop.
    mutating func takeDue(now: Int64) -> [(EventLoop) -> Void] {
        var due: [(EventLoop) -> Void] = []
        while let top = heap.first, top.deadline <= now {
            let e = popTop()
            if let body = bodies.removeValue(forKey: e.id) { due.append(body) }
        }
        return due
    }

    private mutating func popTop() -> Entry {
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return top
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i].fires(before: heap[parent]) else { return }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, heap[l].fires(before: heap[m]) { m = l }
            if r < heap.count, heap[r].fires(before: heap[m]) { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}
