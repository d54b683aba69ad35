import Glibc

// Sockets a loop drives for another owner (a Redis client, later others): the owner opens the
// socket, registers it, and gets callbacks on the loop's thread. The loop never reads, writes
// or closes it; it only reports readiness. Everything here runs on the loop's thread.

/// A socket the loop reports readiness of. Callbacks come only on the loop's thread, and none
/// after `EventLoop.unregister` returned.
protocol LoopSocket: AnyObject {
    var fd: Int32 { get }
    /// Input (or end of input) is waiting.
    func onReadable()
    /// Output has room again (only while write interest is on).
    func onWritable()
    /// EPOLLERR: the socket failed (a refused connect lands here too). Read `SO_ERROR` for why.
    func onError()
}

/// A registered socket: its slot, and a generation so an id kept after `unregister` names nothing.
struct LoopSocketID: Hashable, Sendable {
    let slot: Int32
    let generation: UInt32
}

/// Slot generations (connections' and foreign sockets') as they go into epoll tokens: at most
/// 29 bits, so `generation << 32 | slot` never reaches the tag bits (61 foreign, 62 listener,
/// 63 wake). They wrap to 1, skipping 0.
enum SlotGeneration {
    static let bits = 29
    static let max: UInt32 = (1 << bits) - 1

    static func next(after g: UInt32) -> UInt32 { g >= max ? 1 : g + 1 }
}

/// The loop's table of foreign sockets. A slot is reused at once with a new generation; an
/// event already taken for the old one carries the old generation and finds nothing.
struct ForeignSockets {
    private var slots: [LoopSocket?] = []
    private var generations: [UInt32] = []
    private var free: [Int32] = []

    mutating func add(_ s: LoopSocket) -> LoopSocketID {
        let slot: Int32
        if let f = free.popLast() {
            slot = f
        } else {
            slot = Int32(slots.count)
            slots.append(nil)
            generations.append(1)
        }
        slots[Int(slot)] = s
        return LoopSocketID(slot: slot, generation: generations[Int(slot)])
    }

    func socket(_ id: LoopSocketID) -> LoopSocket? {
        let i = Int(id.slot)
        guard i >= 0, i < slots.count, generations[i] == id.generation else { return nil }
        return slots[i]
    }

    mutating func remove(_ id: LoopSocketID) -> LoopSocket? {
        guard let s = socket(id) else { return nil }
        let i = Int(id.slot)
        slots[i] = nil
        generations[i] = SlotGeneration.next(after: generations[i])
        free.append(id.slot)
        return s
    }
}
