import Protocol

// Edit and delete on SQLite (docs/protocol.md "Edit and delete"). Each is one transaction: the
// message row, its edit history, its search entries, the `messages` notifications that quote
// it, the webhook bodies that quote it and the webhook event for the change. The writer runs
// with secure_delete, so what a delete removes is overwritten in the file, not only unlinked.
extension SQLiteStore {
    /// The message at (conversation, seq) with its conversation's row id, or nil.
    private static func locate(_ db: SQLiteConnection, _ key: ConversationKey, seq: Int64) throws -> (StoredMessage, Int64)? {
        let s = try db.statement("""
            SELECT \(qualifiedMessageColumns), c.id
            FROM conversations c JOIN messages m ON m.conversation_id = c.id
            WHERE c.service = ?1 AND c.client_id = ?2 AND m.seq = ?3
            """)
        try s.bind(.text(key.service), .text(key.clientId), .int(seq))
        guard try s.step() else { return nil }
        let found = (message(s, key), s.int(messageColumnCount))
        try s.run()
        return found
    }

    public func editMessage(_ r: MessageChangeRequest, text: String, completion: @escaping StoreCompletion<MessageChange>) {
        let wording = messageWording, webhooks = webhookOutbox
        write({ db in
            guard let (old, conversation) = try Self.locate(db, r.conversation, seq: r.seq), !old.isDeleted,
                  r.withNotes || !old.isInternal else { return .notFound }
            // Nobody edits another's message, admins included: an edit speaks for the sender.
            guard old.senderId == r.actor else { return .notSender }
            if let refused = r.refusal(of: old) { return refused }
            guard old.text != text else { return .unchanged(old) }
            if try Self.editCount(db, old.msgId) >= ContractLimits.maxEditsPerMessage { return .tooManyEdits }
            try db.statement("INSERT INTO message_edits (message_id, text, edited_at, editor) VALUES (?1, ?2, ?3, ?4)")
                .bind(.int(old.msgId), .text(old.text), .int(r.now), .text(r.actor)).run()
            try db.statement("UPDATE messages SET text = ?2, edited_at = ?3 WHERE id = ?1")
                .bind(.int(old.msgId), .text(text), .int(r.now)).run()
            var edited = old
            edited.text = text
            edited.editedAt = r.now
            try Self.indexForSearch(db, msgId: old.msgId, conversation: conversation, text: text)
            let notes = try Self.requoteMessageNotifications(db, edited, wording: wording)
            try webhooks.enqueue(db, .messageUpdated, orderingKey: r.conversation.channel, now: r.now) { $0.messageUpdatedFields(edited) }
            return .changed(edited, notifications: notes)
        }, completion)
    }

    private static func editCount(_ db: SQLiteConnection, _ msgId: Int64) throws -> Int {
        let s = try db.statement("SELECT count(*) FROM message_edits WHERE message_id = ?1")
        try s.bind(.int(msgId))
        let n = try s.step() ? Int(s.int(0)) : 0
        try s.run()
        return n
    }

    /// Makes the webhook events of the message whose `"msg_id":N,` is ?2, in conversation ?1,
    /// tombstones (through `webhook_events_by_key`: one conversation's events, not the outbox).
    static let webhookTombstones = """
        UPDATE webhook_events
        SET body = json_set(json_remove(body, '$.data.attachments'), '$.data.text', '', '$.data.deleted', json('true'))
        WHERE ordering_key = ?1 AND type IN ('message.created', 'message.updated') AND instr(body, ?2) > 0
        """

    public func deleteMessage(_ r: MessageChangeRequest, completion: @escaping StoreCompletion<MessageChange>) {
        let wording = messageWording, webhooks = webhookOutbox
        write({ db in
            guard let (old, conversation) = try Self.locate(db, r.conversation, seq: r.seq), r.withNotes || !old.isInternal else { return .notFound }
            if let refused = r.refusal(of: old) { return refused }
            guard !old.isDeleted else { return .unchanged(old) }
            try db.statement("UPDATE messages SET text = '', attachments = NULL, deleted_at = ?2 WHERE id = ?1")
                .bind(.int(old.msgId), .int(r.now)).run()
            try db.statement("DELETE FROM message_edits WHERE message_id = ?1").bind(.int(old.msgId)).run()
            try Self.indexForSearch(db, msgId: old.msgId, conversation: conversation, text: nil)
            var deleted = old
            deleted.text = ""
            deleted.attachments = []
            deleted.isDeleted = true
            let notes = try Self.requoteMessageNotifications(db, deleted, wording: wording)
            // Webhook bodies already written quote the text too (delivered ones are kept for the
            // deliveries list): they become tombstones like the message.
            try db.statement(Self.webhookTombstones).bind(.text(r.conversation.channel), .text("\"msg_id\":\(old.msgId),")).run()
            try db.statement("INSERT INTO audit_log (actor_id, action, target, ts) VALUES (?1, 'delete', ?2, ?3)")
                .bind(.text(r.actor), .text("\(r.conversation.channel)#\(r.seq)"), .int(r.now)).run()
            try webhooks.enqueue(db, .messageDeleted, orderingKey: r.conversation.channel, now: r.now) { $0.messageDeletedFields(deleted) }
            return .changed(deleted, notifications: notes)
        }, completion)
    }

    /// The `messages` notifications whose body shows `m` (they point at its seq) get their
    /// words again from `m` as it is now; returned to be pushed again to their users.
    private static func requoteMessageNotifications(_ db: SQLiteConnection, _ m: StoredMessage,
                                                    wording: MessageNotificationWording) throws -> [DeliveredNotification] {
        let s = try db.statement("""
            SELECT id, user_id, conversation_count, data, ts, read_at IS NOT NULL FROM notifications
            WHERE conversation = ?1 AND conversation_seq = ?2 AND user_id IS NOT NULL
            """)
        try s.bind(.text(m.conversation.channel), .int(m.seq))
        var rows: [(id: Int64, user: String, count: Int64, data: String, ts: Int64, read: Bool)] = []
        while try s.step() { rows.append((s.int(0), s.text(1), s.optionalInt(2) ?? 1, s.text(3), s.int(4), s.int(5) != 0)) }
        var out: [DeliveredNotification] = []
        for row in rows {
            let (title, body) = wording(m, Int(row.count))
            try db.statement("UPDATE notifications SET title = ?2, body = ?3 WHERE id = ?1")
                .bind(.int(row.id), .text(title), .text(body)).run()
            let record = NotificationRecord(id: row.id, service: m.conversation.service, category: "messages", title: title,
                                            body: body, data: row.data, ts: row.ts, read: row.read)
            out.append(DeliveredNotification(userId: row.user, record: record, unread: try unread(db, user: row.user)))
        }
        return out
    }

    public func messageEdits(_ key: ConversationKey, seq: Int64,
                             completion: @escaping StoreCompletion<(message: StoredMessage, edits: [MessageEdit])?>) {
        read({ db in
            guard let (m, _) = try Self.locate(db, key, seq: seq) else { return nil }
            let s = try db.statement("SELECT text, edited_at, editor FROM message_edits WHERE message_id = ?1 ORDER BY id")
            try s.bind(.int(m.msgId))
            var edits: [MessageEdit] = []
            while try s.step() { edits.append(MessageEdit(text: s.text(0), editedAt: s.int(1), editor: s.text(2))) }
            return (m, edits)
        }, completion)
    }
}
