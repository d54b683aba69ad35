import Core

// Per-channel entries behind 64 locks chosen by the channel's hash: threads working on different
// conversations rarely wait for each other, and a channel's entry changes only under its own
// stripe's lock. StreamCursors (several nodes) and ConversationStateCache (one node) keep their
// per-conversation state in one.
final class StripedChannels<Entry>: Sendable {
    private let stripes: [Locked<[String: Entry]>]

    init() {
        stripes = (0..<64).map { _ in Locked([:]) }
    }

    /// Runs `body` on the entries of the stripe that holds `channel`, under its lock (to add,
    /// remove or read one).
    func withStripe<R>(_ channel: String, _ body: (inout [String: Entry]) -> R) -> R {
        stripes[Int(ShardRing.hash(channel) % UInt64(stripes.count))].withLock(body)
    }

    /// Runs `body` on the channel's entry in place, under its stripe's lock (nil when it has
    /// none). In place: a copy taken out and written back would copy what the entry holds.
    func withEntry<R>(_ channel: String, _ body: (inout Entry) -> R) -> R? {
        withStripe(channel) { entries -> R? in
            guard let i = entries.index(forKey: channel) else { return nil }
            return body(&entries.values[i])
        }
    }

    /// Every channel with an entry.
    var channels: [String] {
        var all: [String] = []
        for stripe in stripes { stripe.withLock { all.append(contentsOf: $0.keys) } }
        return all
    }

    var count: Int { stripes.reduce(0) { n, s in n + s.withLock { $0.count } } }
}
