import Protocol

// Edit and delete on PostgreSQL: the same transaction as SQLite's (SQLiteStore+Messages.swift),
// on the conversation's writer (its lock key), so a change is ordered with the sends around it.
// A deleted text is overwritten in the row; the old row version stays in the heap until VACUUM
// reclaims it (docs/hardening.md "Erasure").
extension PostgresStore {
    /// `messageColumns` of the messages table aliased `m`.
    static let qualifiedMessageColumns = qualified(messageColumns, as: "m")

    /// The message at (conversation, seq); `locking`: its row stays locked to the commit (an edit
    /// or a delete on the writer).
    private static func locate(_ db: PGConnection, _ key: ConversationKey, seq: Int64, locking: Bool = true) throws -> StoredMessage? {
        let r = try db.query("""
            SELECT \(Self.qualifiedMessageColumns)
            FROM conversations c JOIN messages m ON m.conversation_id = c.id
            WHERE c.service = $1 AND c.client_id = $2 AND m.seq = $3::bigint\(locking ? " FOR UPDATE OF m" : "")
            """, [key.service, key.clientId, "\(seq)"])
        return r.count == 1 ? message(r, 0, key) : nil
    }

    public func editMessage(_ r: MessageChangeRequest, text: String, completion: @escaping StoreCompletion<MessageChange>) {
        let wording = messageWording, webhooks = webhookOutbox
        write(lockKey: r.conversation.channel, { db in
            guard let old = try Self.locate(db, r.conversation, seq: r.seq), !old.isDeleted, r.withNotes || !old.isInternal else { return .notFound }
            guard old.senderId == r.actor else { return .notSender }
            if let refused = r.refusal(of: old) { return refused }
            guard old.text != text else { return .unchanged(old) }
            let edits = try db.query("SELECT count(*) FROM message_edits WHERE message_id = $1::bigint", ["\(old.msgId)"])
            if edits.int(0, 0) >= ContractLimits.maxEditsPerMessage { return .tooManyEdits }
            let before = Self.storable(old.text), after = Self.storable(text)
            _ = try db.query("""
                INSERT INTO message_edits (message_id, text, text_escaped, edited_at, editor) VALUES ($1::bigint, $2, $3::boolean, $4::bigint, $5)
                """, ["\(old.msgId)", before.text, before.escaped ? "t" : "f", "\(r.now)", r.actor])
            _ = try db.query("UPDATE messages SET text = $2, text_escaped = $3::boolean, edited_at = $4::bigint, search_terms = hub_terms($5) WHERE id = $1::bigint",
                             ["\(old.msgId)", after.text, after.escaped ? "t" : "f", "\(r.now)", self.searchTerms(text)])
            var edited = old
            edited.text = text
            edited.editedAt = r.now
            let notes = try Self.requoteMessageNotifications(db, edited, wording: wording)
            try webhooks.enqueue(db, .messageUpdated, orderingKey: r.conversation.channel, now: r.now) { $0.messageUpdatedFields(edited) }
            return .changed(edited, notifications: notes)
        }, completion: completion)
    }

    public func deleteMessage(_ r: MessageChangeRequest, completion: @escaping StoreCompletion<MessageChange>) {
        let wording = messageWording, webhooks = webhookOutbox
        write(lockKey: r.conversation.channel, { db in
            guard let old = try Self.locate(db, r.conversation, seq: r.seq), r.withNotes || !old.isInternal else { return .notFound }
            if let refused = r.refusal(of: old) { return refused }
            guard !old.isDeleted else { return .unchanged(old) }
            _ = try db.query("""
                UPDATE messages SET text = '', text_escaped = false, attachments = NULL, deleted_at = $2::bigint, search_terms = NULL WHERE id = $1::bigint
                """, ["\(old.msgId)", "\(r.now)"])
            _ = try db.query("DELETE FROM message_edits WHERE message_id = $1::bigint", ["\(old.msgId)"])
            var deleted = old
            deleted.text = ""
            deleted.attachments = []
            deleted.isDeleted = true
            let notes = try Self.requoteMessageNotifications(db, deleted, wording: wording)
            _ = try db.query("""
                UPDATE webhook_events
                SET body = jsonb_set(jsonb_set(body::jsonb #- '{data,attachments}', '{data,text}', '""'), '{data,deleted}', 'true')::text
                WHERE ordering_key = $1 AND type IN ('message.created', 'message.updated') AND strpos(body, $2) > 0
                """, [r.conversation.channel, "\"msg_id\":\(old.msgId),"])
            _ = try db.query("INSERT INTO audit_log (actor_id, action, target, ts) VALUES ($1, 'delete', $2, $3::bigint)",
                             [r.actor, "\(r.conversation.channel)#\(r.seq)", "\(r.now)"])
            try webhooks.enqueue(db, .messageDeleted, orderingKey: r.conversation.channel, now: r.now) { $0.messageDeletedFields(deleted) }
            return .changed(deleted, notifications: notes)
        }, completion: completion)
    }

    /// See SQLiteStore's: the notifications pointing at `m`'s seq take their words from `m` now.
    private static func requoteMessageNotifications(_ db: PGConnection, _ m: StoredMessage,
                                                    wording: MessageNotificationWording) throws -> [DeliveredNotification] {
        let rows = try db.query("""
            SELECT id, user_id, COALESCE(conversation_count, 1), data, ts, read_at IS NOT NULL FROM notifications
            WHERE conversation = $1 AND conversation_seq = $2::bigint AND user_id IS NOT NULL
            """, [m.conversation.channel, "\(m.seq)"])
        guard rows.count > 0 else { return [] }
        var out: [(String, NotificationRecord)] = []
        for row in 0..<rows.count {
            let (id, user) = (rows.int(row, 0), rows.text(row, 1))
            let (title, body) = wording(m, Int(rows.int(row, 2)))
            let stored = Self.storableTexts(title, body, rows.text(row, 3))
            _ = try db.query("UPDATE notifications SET title = $2, body = $3, text_escaped = $4::boolean WHERE id = $1::bigint",
                             ["\(id)", stored.title, stored.body, stored.escaped ? "true" : "false"])
            out.append((user, NotificationRecord(id: id, service: m.conversation.service, category: "messages", title: title,
                                                 body: body, data: rows.text(row, 3), ts: rows.int(row, 4), read: rows.bool(row, 5))))
        }
        // Counts are only read here (nothing unread changed), so no unread lock is needed.
        let counts = try Self.unreadCounts(db, users: out.map(\.0))
        return out.map { DeliveredNotification(userId: $0.0, record: $0.1, unread: counts[$0.0] ?? UnreadCounts()) }
    }

    public func messageEdits(_ key: ConversationKey, seq: Int64,
                             completion: @escaping StoreCompletion<(message: StoredMessage, edits: [MessageEdit])?>) {
        read({ db in
            guard let m = try Self.locate(db, key, seq: seq, locking: false) else { return nil }
            let e = try db.query("SELECT text, text_escaped, edited_at, editor FROM message_edits WHERE message_id = $1::bigint ORDER BY id",
                                 ["\(m.msgId)"])
            let edits = (0..<e.count).map {
                MessageEdit(text: Self.original(e.text($0, 0), escaped: e.bool($0, 1)), editedAt: e.int($0, 2), editor: e.text($0, 3))
            }
            return (m, edits)
        }, completion: completion)
    }
}
