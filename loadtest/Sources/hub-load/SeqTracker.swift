// Per-subscriber ordering check for one conversation. The hub promises each subscriber every
// message once, in seq order, with no gap. `base` is the conversation's last seq when the
// subscription started (from the subscribe reply); every later push is checked against it.
struct SeqTracker {
    private(set) var base: Int64 = 0
    /// The lowest seq above base not yet seen.
    private var next: Int64 = 1
    /// Seqs seen above `next` (only while a gap is open).
    private var ahead: Set<Int64> = []
    private(set) var highest: Int64 = 0
    private(set) var duplicates = 0
    private(set) var outOfOrder = 0

    mutating func start(lastSeq: Int64) {
        base = lastSeq
        next = lastSeq + 1
        highest = lastSeq
    }

    /// Records a pushed seq; returns false for a duplicate.
    @discardableResult
    mutating func record(_ seq: Int64) -> Bool {
        if seq < next || ahead.contains(seq) {
            duplicates += 1
            return false
        }
        if seq < highest { outOfOrder += 1 }
        if seq > highest { highest = seq }
        if seq == next {
            next += 1
            while !ahead.isEmpty, ahead.remove(next) != nil { next += 1 }
        } else {
            ahead.insert(seq)
        }
        return true
    }

    /// Distinct seqs seen above base.
    var distinct: Int64 { next - base - 1 + Int64(ahead.count) }

    /// True when every seq up to `seq` has arrived.
    func hasAll(upTo seq: Int64) -> Bool { next > seq }

    /// Seqs in (base, upTo] never seen; `upTo` is at least the highest seq seen.
    func missing(upTo: Int64) -> Int64 {
        let top = max(upTo, highest)
        return (top - base) - distinct
    }
}
