import Metrics
import Persistence
import Protocol

// The JSON shapes shared by WebSocket pushes, op results and bridge answers: one writer per
// shape, so a message or a notification reads the same wherever it appears.
extension JSONWriter {
    public mutating func messageFields(_ m: StoredMessage) {
        key("channel"); string(m.conversation.channel)
        key("seq"); int(m.seq)
        key("msg_id"); int(m.msgId)
        key("from"); beginObject()
        key("id"); string(m.senderId)
        key("role"); string(m.senderRole)
        key("name"); string(m.senderName)
        endObject()
        key("text"); string(m.text)
        key("ts"); int(m.ts)
        key("client_msg_id")
        if let c = m.clientMsgId { string(c) } else { null() }
    }

    public mutating func messageList(_ list: [StoredMessage]) { objects(list) { $0.messageFields($1) } }

    /// `[{…}, …]`: one object per item, its fields written by `fields`.
    public mutating func objects<T>(_ items: [T], _ fields: (inout JSONWriter, T) -> Void) {
        beginArray()
        for item in items {
            beginObject()
            fields(&self, item)
            endObject()
        }
        endArray()
    }

    /// `{id, service, category, title, body, data, ts, read}` (+ `broadcast: true` for broadcasts).
    public mutating func notificationFields(_ n: NotificationRecord) {
        key("id"); int(n.id)
        key("service"); string(n.service)
        key("category"); string(n.category)
        key("title"); string(n.title)
        key("body"); string(n.body)
        key("data"); raw(n.data)
        key("ts"); int(n.ts)
        key("read"); bool(n.read)
        if n.audience != nil { key("broadcast"); bool(true) }
    }

    public mutating func notificationList(_ list: [NotificationRecord]) { objects(list) { $0.notificationFields($1) } }

    /// `{total, by_service}`.
    public mutating func unreadFields(_ u: UnreadCounts) {
        key("total"); int(u.total)
        key("by_service"); beginObject()
        for (service, n) in u.byService.sorted(by: { $0.key < $1.key }) { key(service); int(n) }
        endObject()
    }

    public mutating func unreadObject(_ u: UnreadCounts) {
        beginObject()
        unreadFields(u)
        endObject()
    }

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

    /// `messages_total, notifications_total`: what the store holds (`*_stored` above count only
    /// since this process started).
    public mutating func storedTotalsFields(_ totals: StoredTotals) {
        key("messages_total"); int(totals.messages)
        key("notifications_total"); int(totals.notifications)
    }

    /// `service, client, agents`: the `assignment` push's fields (the bridge's answer adds to them).
    public mutating func assignmentFields(_ key: ConversationKey, agent: String?) {
        self.key("service"); string(key.service)
        self.key("client"); string(key.clientId)
        self.key("agents"); beginArray(); if let agent { string(agent) }; endArray()
    }

    /// The body of a JSON object built by `fields`.
    public static func object(capacity: Int = 256, _ fields: (inout JSONWriter) -> Void) -> [UInt8] {
        var w = JSONWriter(capacity: capacity)
        w.beginObject()
        fields(&w)
        w.endObject()
        return w.bytes
    }
}
