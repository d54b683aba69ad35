/// A connection's address across threads: its loop, slot and the slot's generation (a stale
/// id never reaches a newer connection that reused the slot).
struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    let loop: Int
    let slot: Int32
    let generation: UInt32
    var description: String { "\(loop).\(slot).\(generation)" }
}
