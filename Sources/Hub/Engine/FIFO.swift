// A first-in, first-out list over one array. Taking from the front moves an index instead of
// shifting what is behind it; the taken slots are dropped when the list empties, or once they
// are half the array, so both ends cost O(1) amortized. Used for a connection's output (its
// frames), for the loop's lists of connections waiting for a later turn, and for the
// publications a loop's fan-out has yet to deliver (`LoopRegistry`).
struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0
    /// Capacity kept when the list empties; a larger array goes back to the allocator.
    private let keptCapacity: Int

    init(keepingCapacity keptCapacity: Int) { self.keptCapacity = keptCapacity }

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }

    /// The element `i` places from the front.
    subscript(i: Int) -> Element { storage[head + i] }

    var first: Element? { isEmpty ? nil : storage[head] }

    /// Every element, front to back, as a slice of the one array (nothing copied).
    var elements: ArraySlice<Element> { storage[head...] }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let element = storage[head]
        removeFirst(1)
        return element
    }

    mutating func removeFirst(_ n: Int) {
        head += n
        if head == storage.count {
            storage.removeAll(keepingCapacity: storage.capacity <= keptCapacity)
            head = 0
        } else if head >= 32 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }

    /// Keeps the first `n` elements and drops the rest.
    mutating func truncate(to n: Int) {
        storage.removeSubrange((head + n)...)
    }

    mutating func removeAll() {
        storage.removeAll()
        head = 0
    }

    /// Gives the kept array back to the allocator when the list is empty (no-op otherwise).
    mutating func releaseStorageIfEmpty() {
        guard isEmpty, storage.capacity > 0 else { return }
        storage = []
        head = 0
    }

    /// Slots the array holds now, used or not (for tests of idle memory).
    var capacity: Int { storage.capacity }
}
