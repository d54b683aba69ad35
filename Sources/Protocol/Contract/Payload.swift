// The JSON shapes shared by WebSocket pushes, op results and bridge answers: one writer per
// shape, so a message or a notification reads the same wherever it appears.
extension JSONWriter {
    public mutating func messageFields(_ m: StoredMessage) {
        messageHeadFields(m)
        // A tombstone has no text and no attachments: they are erased, not hidden.
        if !m.isDeleted { key("text"); string(m.text) }
        key("ts"); int(m.ts)
        key("client_msg_id")
        if let c = m.clientMsgId { string(c) } else { null() }
        if m.isInternal { key("internal"); bool(true) }
        if !m.attachments.isEmpty && !m.isDeleted { key("attachments"); attachmentList(m.attachments) }
        if let e = m.editedAt { key("edited_at"); int(e) }
        if m.isDeleted { key("deleted"); bool(true) }
    }

    /// `channel, seq, msg_id, from {id, role, name}`: what names a message and its sender, first in
    /// a message object and in a search item.
    public mutating func messageHeadFields(_ m: StoredMessage) {
        messageRefFields(m)
        key("from"); beginObject()
        key("id"); string(m.senderId)
        key("role"); string(m.senderRole)
        key("name"); string(m.senderName)
        endObject()
    }

    /// `[{url, name, size, content_type}, …]`.
    public mutating func attachmentList(_ list: [MessageAttachment]) {
        objects(list) { w, a in
            w.key("url"); w.string(a.url)
            w.key("name"); w.string(a.name)
            w.key("size"); w.int(a.size)
            w.key("content_type"); w.string(a.contentType)
        }
    }

    /// `channel, seq, msg_id`: which message (the head of every shape about one).
    public mutating func messageRefFields(_ m: StoredMessage) {
        key("channel"); string(m.conversation.channel)
        key("seq"); int(m.seq)
        key("msg_id"); int(m.msgId)
    }

    /// `channel, seq, msg_id, text, edited_at`: the `message.updated` push and webhook.
    public mutating func messageUpdatedFields(_ m: StoredMessage) {
        messageRefFields(m)
        key("text"); string(m.text)
        key("edited_at"); if let e = m.editedAt { int(e) } else { null() }
        if m.isInternal { key("internal"); bool(true) }
    }

    /// `[{text, edited_at, editor}, …]`: a message's earlier texts, oldest first.
    public mutating func editList(_ edits: [MessageEdit]) {
        objects(edits) { w, e in
            w.key("text"); w.string(e.text)
            w.key("edited_at"); w.int(e.editedAt)
            w.key("editor"); w.string(e.editor)
        }
    }

    /// `channel, seq, msg_id`: the `message.deleted` push and webhook.
    public mutating func messageDeletedFields(_ m: StoredMessage) {
        messageRefFields(m)
        if m.isInternal { key("internal"); bool(true) }
    }

    /// `channel, status, status_by, status_at`: the `conversation` push and the status op's result.
    public mutating func statusFields(_ s: ConversationStatus) {
        key("channel"); string(s.conversation.channel)
        key("status"); string(s.status)
        key("status_by"); if let by = s.by { string(by) } else { null() }
        key("status_at"); if let at = s.at { int(at) } else { null() }
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

    /// `items, unread, more`: a page of a user's notifications.
    public mutating func notificationPageFields(_ page: NotificationPage) {
        key("items"); notificationList(page.items)
        key("unread"); unreadObject(page.unread)
        key("more"); bool(page.more)
    }
}
