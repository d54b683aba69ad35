import Persistence
import Protocol

// The stats shape shared by `admin.stats` and `GET /v1/stats` (the other shared shapes are in
// Protocol/Contract/Payload.swift).
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
