// The pub/sub connection's inbound queue, bounded by messages and by bytes. The reader puts
// every message it parses here and never stops reading (a paused reader would let Redis's
// pubsub output buffer grow until Redis cuts the connection); the consumer takes them on a
// budget per loop turn. When the ring is full the message is dropped, counted, and its channel
// remembered, so recovery can read that channel's gap from the store.
struct InboundRing {
    struct Limits: Sendable {
        var maxMessages = 65_536
        var maxBytes = 32 << 20
        init() {}
        init(maxMessages: Int, maxBytes: Int) {
            self.maxMessages = maxMessages
            self.maxBytes = maxBytes
        }
    }

    struct Message {
        let channel: String
        let payload: [UInt8]
    }

    let limits: Limits
    private var entries = FIFO<Message>(keepingCapacity: 1024)
    private(set) var bytes = 0
    private(set) var droppedTotal = 0
    /// Channels that lost a message since the consumer last took this set.
    private(set) var droppedChannels = Set<String>()

    init(limits: Limits) { self.limits = limits }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }

    /// False when the message was dropped for lack of room.
    @discardableResult
    mutating func offer(_ m: Message) -> Bool {
        let size = m.payload.count + m.channel.utf8.count
        guard entries.count < limits.maxMessages, bytes + size <= limits.maxBytes else {
            droppedTotal += 1
            droppedChannels.insert(m.channel)
            return false
        }
        entries.append(m)
        bytes += size
        return true
    }

    mutating func take() -> Message? {
        guard let m = entries.popFirst() else { return nil }
        bytes -= m.payload.count + m.channel.utf8.count
        return m
    }

    mutating func takeDroppedChannels() -> Set<String> {
        defer { droppedChannels = [] }
        return droppedChannels
    }
}
