import Protocol

// What the running hub reports about its connections at one moment (for /metrics, /v1/stats
// and `admin.stats`).
public struct LiveStats: Sendable, Equatable {
    public var connections: Int
    public var webSockets: Int
    /// Users with at least one authenticated connection, by role.
    public var onlineByRole: [String: Int]
    public var slowConsumerCloses: Int
    public init(connections: Int, webSockets: Int, onlineByRole: [String: Int], slowConsumerCloses: Int = 0) {
        self.connections = connections
        self.webSockets = webSockets
        self.onlineByRole = onlineByRole
        self.slowConsumerCloses = slowConsumerCloses
    }
}

extension JSONWriter {
    /// The live half of the stats (`admin.stats`, and the start of `GET /v1/stats`).
    public mutating func liveStatsFields(_ live: LiveStats, _ metrics: HubMetrics) {
        key("connections"); int(live.connections)
        key("websockets"); int(live.webSockets)
        key("users_online"); int(live.onlineByRole.values.reduce(0, +))
        key("agents_online")
        int(Role.allCases.filter(\.isAgent).reduce(0) { $0 + (live.onlineByRole[$1.rawValue] ?? 0) })
        key("online_by_role"); beginObject()
        for role in Vocabulary.roles { key(role); int(live.onlineByRole[role] ?? 0) }
        endObject()
        key("messages_stored"); int(metrics.messagesStored.load(ordering: .relaxed))
        key("notifications_stored"); int(metrics.notificationsStored.load(ordering: .relaxed))
    }
}
