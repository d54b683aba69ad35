import Protocol

// What the chat side of the store needs of notifications, inside its own transactions: a
// user's unread counts, the one `messages` notification per user and conversation, and
// clearing it when a read mark reaches it. (The NotificationStore calls live in
// PostgresStore+Notifications.swift and use these too.)
extension PostgresStore {
    /// Broadcast audiences a user ($1) belongs to: everyone, and their role.
    static let audienceOfUser = "n.audience IN ('all', COALESCE((SELECT role FROM users WHERE id = $1), ''))"

    /// The user's unread notifications per service: their own, and broadcasts to them not read.
    /// `locking` (in a writer's transaction; readers pass false): first takes the user's unread
    /// lock, held to the commit. Two writers counting for one user at once would each miss the
    /// other's uncommitted row, and the count committed last could be the smaller one; with the
    /// lock the second counts after the first committed, so counts in commit (= completion)
    /// order never go back.
    static func unread(_ db: PGConnection, user: String, locking: Bool = true) throws -> UnreadCounts {
        if locking { try lockUnread(db, users: [user]) }
        return try unreadCounts(db, users: [user])[user] ?? UnreadCounts()
    }

    /// The SQL that takes the unread lock of a stripe, held to the commit. Users share 256
    /// stripes per schema: a lock per user would take a lock-table entry per recipient, and a
    /// batch of large posts overflows the server's table ("out of shared memory").
    static func unreadLock(stripe: String) -> String {
        "pg_advisory_xact_lock(hashtext(current_schema() || ':unread'), \(stripe))"
    }

    /// The unread-lock stripe of the user named by the SQL expression `user`.
    static func unreadStripe(of user: String) -> String { "(hashtext(\(user)) & 255)" }

    /// Creates or updates `user`'s one `messages` notification for the message's conversation,
    /// in the words `wording` gives it. (The caller counts the users' unread notifications once
    /// all of theirs are stored.)
    static func noteMessage(_ db: PGConnection, _ m: StoredMessage, for user: String,
                            wording: MessageNotificationWording) throws -> NotificationRecord {
        let channel = m.conversation.channel
        // One row per user and conversation: a new message counts on from an unread one and
        // starts again at 1 after a read one. The text follows once the count is known.
        let upsert = try db.query("""
            INSERT INTO notifications (user_id, service, category, title, body, data, ts, conversation, conversation_seq, conversation_count)
            VALUES ($1, $2, 'messages', '', '', '', $3::bigint, $4, $5::bigint, 1)
            ON CONFLICT (user_id, conversation) WHERE conversation IS NOT NULL DO UPDATE SET
                conversation_count = CASE WHEN notifications.read_at IS NULL THEN COALESCE(notifications.conversation_count, 0) + 1 ELSE 1 END,
                ts = excluded.ts, read_at = NULL, pushed_at = NULL, conversation_seq = excluded.conversation_seq
            RETURNING id, conversation_count
            """, [user, m.conversation.service, "\(m.ts)", channel, "\(m.seq)"])
        guard upsert.count == 1 else { throw StoreError.internalError("message notification not stored") }
        let (id, count) = (upsert.int(0, 0), upsert.int(0, 1))
        let (title, body) = wording(m, Int(count))
        // The channel holds only [A-Za-z0-9_.@:-]: safe inside a JSON string as it is.
        let data = "{\"channel\":\"\(channel)\",\"seq\":\(m.seq),\"count\":\(count)}"
        let stored = Self.storableTexts(title, body, data)
        _ = try db.query("UPDATE notifications SET title = $2, body = $3, data = $4, text_escaped = $5::boolean WHERE id = $1::bigint",
                         ["\(id)", stored.title, stored.body, stored.data, stored.escaped ? "true" : "false"])
        return NotificationRecord(id: id, service: m.conversation.service, category: "messages", title: title,
                                  body: body, data: data, ts: m.ts, read: false)
    }

    /// A read mark reached the conversation's `messages` notification: it is read now.
    static func clearMessageNotification(_ db: PGConnection, user: String, _ key: ConversationKey,
                                         upTo mark: Int64, now: Int64) throws -> UnreadCounts? {
        let r = try db.query("""
            UPDATE notifications SET read_at = $4::bigint
            WHERE user_id = $1 AND conversation = $2 AND read_at IS NULL AND conversation_seq <= $3::bigint
            RETURNING id
            """, [user, key.channel, "\(mark)", "\(now)"])
        return r.count > 0 ? try unread(db, user: user) : nil
    }
}
