import Dispatch
import Protocol

// Notifications on SQLite: per-user rows, broadcasts stored once with per-user state, fan-outs
// in chunks, message notifications kept one per user and conversation.
extension SQLiteStore: NotificationStore {
    static let recordColumns = "n.id, n.service, n.category, n.title, n.body, n.data, n.ts, n.read_at IS NOT NULL, n.audience"

    static func record(_ s: SQLiteStatement) -> NotificationRecord {
        NotificationRecord(id: s.int(0), service: s.text(1), category: s.text(2), title: s.text(3), body: s.text(4),
                           data: s.text(5), ts: s.int(6), read: s.int(7) != 0, audience: s.optionalText(8))
    }

    /// Broadcast audiences a user belongs to: everyone, and their role.
    private static let audienceOfUser = "n.audience IN ('all', COALESCE((SELECT role FROM users WHERE id = ?1), ''))"

    static func unread(_ db: SQLiteConnection, user: String) throws -> UnreadCounts {
        var counts: [String: Int] = [:]
        let own = try db.statement("SELECT service, COUNT(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL GROUP BY service")
        try own.bind(.text(user))
        while try own.step() { counts[own.text(0), default: 0] += Int(own.int(1)) }
        let broadcasts = try db.statement("""
            SELECT n.service, COUNT(*) FROM notifications n
            WHERE n.user_id IS NULL AND \(audienceOfUser)
              AND NOT EXISTS (SELECT 1 FROM broadcast_state s WHERE s.notification_id = n.id AND s.user_id = ?1 AND s.read_at IS NOT NULL)
            GROUP BY n.service
            """)
        try broadcasts.bind(.text(user))
        while try broadcasts.step() { counts[broadcasts.text(0), default: 0] += Int(broadcasts.int(1)) }
        return UnreadCounts(byService: counts)
    }

    /// Inserts one user's notification (and its mail); returns it.
    private static func insert(_ db: SQLiteConnection, _ c: NotificationContent, user: String, now: Int64,
                               emailDelayMs: Int64) throws -> NotificationRecord {
        try db.statement("""
            INSERT INTO notifications (user_id, service, category, title, body, data, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """).bind(.text(user), .text(c.service), .text(c.category), .text(c.title), .text(c.body), .text(c.data), .int(now)).run()
        let id = db.lastInsertRowID
        if let mode = c.email {
            try db.statement("""
                INSERT INTO outbox (notification_id, user_id, mode, status, due_at, created_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?5)
                """).bind(.int(id), .text(user), .text(mode.rawValue), .int(mode == .now ? now : now + emailDelayMs), .int(now)).run()
        }
        return NotificationRecord(id: id, service: c.service, category: c.category, title: c.title, body: c.body,
                                  data: c.data, ts: now, read: false)
    }

    /// Runs `body` in a writer job, guarded by an Idempotency-Key when one is claimed: a key
    /// seen before returns its stored answer and `body` does not run. `keep` false: the value
    /// changed nothing and its answer is not kept, so the key stays free for a retry. `keep`
    /// and the claim's `render` run inside the transaction: pure (see Store.swift).
    func writeOnce<T: Sendable>(_ claim: IdempotencyClaim<T>?, now: Int64,
                                keep: @escaping @Sendable (T) -> Bool = { _ in true },
                                _ body: @escaping @Sendable (SQLiteConnection) throws -> T,
                                _ completion: @escaping StoreCompletion<Idempotent<T>>) {
        write({ db in
            guard let claim else { return .fresh(try body(db)) }
            // The key is claimed first, so a concurrent writer with the same key waits on it or
            // finds the answer, never runs `body` too. A throwing `body` rolls the claim back.
            let claimed = try db.statement("""
                INSERT INTO idempotency (key, fingerprint, status, body, created_at) VALUES (?1, ?2, 0, '', ?3)
                ON CONFLICT (key) DO NOTHING RETURNING 1
                """)
            try claimed.bind(.text(claim.key), .text(claim.fingerprint), .int(now))
            let isNew = try claimed.step()
            try claimed.run()
            guard isNew else {
                let seen = try db.statement("SELECT fingerprint, status, body FROM idempotency WHERE key = ?1")
                try seen.bind(.text(claim.key))
                guard try seen.step() else { throw StoreError.internalError("an idempotency key claimed and gone") }
                return seen.text(0) == claim.fingerprint
                    ? .replay(StoredResponse(status: Int(seen.int(1)), body: seen.text(2))) : .mismatch
            }
            let value = try body(db)
            guard keep(value) else {
                try db.statement("DELETE FROM idempotency WHERE key = ?1").bind(.text(claim.key)).run()
                return .fresh(value)
            }
            let answer = claim.render(value)
            try db.statement("UPDATE idempotency SET status = ?2, body = ?3 WHERE key = ?1")
                .bind(.text(claim.key), .int(Int64(answer.status)), .text(answer.body)).run()
            return .fresh(value)
        }, completion)
    }

    public func createNotifications(_ content: NotificationContent, users: [String], strict: Bool, now: Int64,
                                    emailDelayMs: Int64, claim: IdempotencyClaim<UserNotifications>?,
                                    completion: @escaping StoreCompletion<Idempotent<UserNotifications>>) {
        writeOnce(claim, now: now, keep: { if case .refused = $0 { false } else { true } }, { db in
            // In the writer job, not on a reader first: a reader's snapshot misses users whose
            // upsert (a PUT, a first connect) is queued or in the open batch, and the answer kept
            // under the key must be the one these inserts were made with.
            let unknown = try Self.unknownUsers(db, users)
            if strict && !unknown.isEmpty { return .refused(unknown: unknown) }
            var out: [DeliveredNotification] = []
            for user in users {
                let record = try Self.insert(db, content, user: user, now: now, emailDelayMs: emailDelayMs)
                out.append(DeliveredNotification(userId: user, record: record, unread: try Self.unread(db, user: user)))
            }
            return .stored(out, unknown: unknown)
        }, completion)
    }

    /// The ids with no row in `users`, in the order given: one statement for the whole list,
    /// a primary-key lookup per id.
    static func unknownUsers(_ db: SQLiteConnection, _ ids: [String]) throws -> [String] {
        let s = try db.statement("""
            SELECT j.value FROM json_each(?1) j WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = j.value)
            """)
        try s.bind(.text(jsonArray(ids)))
        var missing = Set<String>()
        while try s.step() { missing.insert(s.text(0)) }
        return missing.isEmpty ? [] : ids.filter { missing.contains($0) }
    }

    /// A JSON array of strings (for json_each).
    static func jsonArray(_ strings: [String]) -> String {
        var out = "["
        for (i, s) in strings.enumerated() {
            if i > 0 { out += "," }
            out += "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where u.value < 0x20:
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(u)
                }
            }
            out += "\""
        }
        return out + "]"
    }

    private static let audienceOfRow = "(?1 = 'all' OR role = ?1)"
    /// The same, kept off the role index: a fan-out chunk walks users by rowid from its cursor,
    /// which must stay a range scan (with the index SQLite would sort every client per chunk).
    private static let audienceOfRowByRowid = "(?1 = 'all' OR +role = ?1)"

    public func startFanout(_ content: NotificationContent, audience: String, now: Int64,
                            claim: IdempotencyClaim<FanoutStart>?, completion: @escaping StoreCompletion<Idempotent<FanoutStart>>) {
        // The audience is fixed now (users who arrive later are not part of it), counted on a
        // reader so that counting 100,000 users never holds the writer.
        read({ db in
            let s = try db.statement("SELECT COALESCE(MAX(rowid), 0), COUNT(*) FROM users WHERE \(Self.audienceOfRow)")
            try s.bind(.text(audience))
            guard try s.step() else { throw StoreError.internalError("no count") }
            return (s.int(0), Int(s.int(1)))
        }) { [self] (counted: Result<(Int64, Int), StoreError>) in
            guard case .success(let (last, count)) = counted else {
                if case .failure(let e) = counted { completion(.failure(e)) }
                return
            }
            writeOnce(claim, now: now, { db in
                try db.statement("""
                    INSERT INTO fanouts (audience, service, category, title, body, data, email, last_user_rowid, total, created_at)
                    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                    """).bind(.text(audience), .text(content.service), .text(content.category), .text(content.title), .text(content.body),
                              .text(content.data), .of(content.email?.rawValue), .int(last), .int(Int64(count)), .int(now)).run()
                return FanoutStart(id: db.lastInsertRowID, count: count)
            }, completion)
        }
    }

    public func fanoutStep(_ id: Int64, limit: Int, now: Int64, emailDelayMs: Int64,
                           online: Set<String>, completion: @escaping StoreCompletion<FanoutStep>) {
        write({ db in
            let started = DispatchTime.now().uptimeNanoseconds
            let f = try db.statement("""
                SELECT audience, service, category, title, body, data, email, last_user_rowid, cursor
                FROM fanouts WHERE id = ?1 AND finished_at IS NULL
                """)
            try f.bind(.int(id))
            guard try f.step() else { return FanoutStep(delivered: [], stored: 0, finished: true) }
            let audience = f.text(0)
            let content = NotificationContent(service: f.text(1), category: f.text(2), title: f.text(3), body: f.text(4),
                                              data: f.text(5), email: f.optionalText(6).flatMap(EmailMode.init(rawValue:)))
            let last = f.int(7)
            var cursor = f.int(8)
            let users = try db.statement("""
                SELECT rowid, id FROM users WHERE rowid > ?2 AND rowid <= ?3 AND \(Self.audienceOfRowByRowid) ORDER BY rowid LIMIT ?4
                """)
            try users.bind(.text(audience), .int(cursor), .int(last), .int(Int64(limit)))
            var batch: [String] = []
            while try users.step() {
                cursor = users.int(0)
                batch.append(users.text(1))
            }
            var delivered: [DeliveredNotification] = []
            for user in batch {
                let record = try Self.insert(db, content, user: user, now: now, emailDelayMs: emailDelayMs)
                if online.contains(user) {
                    delivered.append(DeliveredNotification(userId: user, record: record, unread: try Self.unread(db, user: user)))
                }
            }
            let finished = batch.count < limit
            try db.statement("UPDATE fanouts SET cursor = ?2, finished_at = ?3 WHERE id = ?1")
                .bind(.int(id), .int(cursor), finished ? .int(now) : .null).run()
            let busy = Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000)
            return FanoutStep(delivered: delivered, stored: batch.count, finished: finished, busyMicros: busy)
        }, completion)
    }

    public func unfinishedFanouts(completion: @escaping StoreCompletion<[Int64]>) {
        read({ db in
            let s = try db.statement("SELECT id FROM fanouts WHERE finished_at IS NULL ORDER BY id")
            var out: [Int64] = []
            while try s.step() { out.append(s.int(0)) }
            return out
        }, completion)
    }

    /// One node runs everything it finds: nothing to lease.
    public func claimUnfinishedFanouts(node: String, now: Int64, completion: @escaping StoreCompletion<[Int64]>) {
        unfinishedFanouts(completion: completion)
    }

    public func createBroadcast(audience: String, title: String, body: String, data: String, now: Int64,
                                claim: IdempotencyClaim<NotificationRecord>?,
                                completion: @escaping StoreCompletion<Idempotent<NotificationRecord>>) {
        writeOnce(claim, now: now, { db in
            try db.statement("""
                INSERT INTO notifications (audience, service, category, title, body, data, ts)
                VALUES (?1, 'platform', 'updates', ?2, ?3, ?4, ?5)
                """).bind(.text(audience), .text(title), .text(body), .text(data), .int(now)).run()
            return NotificationRecord(id: db.lastInsertRowID, service: "platform", category: "updates", title: title,
                                      body: body, data: data, ts: now, read: false, audience: audience)
        }, completion)
    }

    public func recordPushes(_ pushes: [PushedNotification]) {
        write(background: true, { db in
            // Whether each notification is a broadcast, asked once per notification: a
            // broadcast's receipts (thousands at once) are then plain inserts into its state.
            let kind = try db.statement("SELECT user_id IS NULL FROM notifications WHERE id = ?1")
            var isBroadcast: [Int64: Bool] = [:]
            for p in pushes where isBroadcast[p.notification] == nil {
                kind.reset()
                try kind.bind(.int(p.notification))
                // A notification deleted meanwhile (a user's data erased) keeps no receipt.
                if try kind.step() { isBroadcast[p.notification] = kind.int(0) != 0 }
            }
            for p in pushes {
                switch isBroadcast[p.notification] {
                case true?:
                    try db.statement("""
                        INSERT INTO broadcast_state (notification_id, user_id, pushed_at) VALUES (?1, ?2, ?3)
                        ON CONFLICT (notification_id, user_id) DO UPDATE SET pushed_at = COALESCE(pushed_at, excluded.pushed_at)
                        """).bind(.int(p.notification), .text(p.user), .int(p.at)).run()
                case false?:
                    try db.statement("UPDATE notifications SET pushed_at = COALESCE(pushed_at, ?3) WHERE id = ?1 AND user_id = ?2")
                        .bind(.int(p.notification), .text(p.user), .int(p.at)).run()
                case nil:
                    break
                }
            }
        }, { _ in })
    }

    public func notifications(for user: String, _ q: NotificationQuery, completion: @escaping StoreCompletion<NotificationPage>) {
        read({ db in
            let s = try db.statement("""
                SELECT \(Self.recordColumns) FROM notifications n
                WHERE n.user_id = ?1 AND n.id < ?2 AND (?3 IS NULL OR n.service = ?3) AND (?4 = 0 OR n.read_at IS NULL)
                UNION ALL
                SELECT n.id, n.service, n.category, n.title, n.body, n.data, n.ts, s.read_at IS NOT NULL, n.audience
                FROM notifications n LEFT JOIN broadcast_state s ON s.notification_id = n.id AND s.user_id = ?1
                WHERE n.user_id IS NULL AND \(Self.audienceOfUser) AND n.id < ?2 AND (?3 IS NULL OR n.service = ?3)
                  AND (?4 = 0 OR s.read_at IS NULL)
                ORDER BY 1 DESC LIMIT ?5
                """)
            try s.bind(.text(user), .int(q.before ?? Int64.max), .of(q.service), .int(q.unreadOnly ? 1 : 0), .int(Int64(q.limit + 1)))
            var items: [NotificationRecord] = []
            while try s.step() { items.append(Self.record(s)) }
            let more = items.count > q.limit
            if more { items.removeLast() }
            return NotificationPage(items: items, unread: try Self.unread(db, user: user), more: more)
        }, completion)
    }

    public func markNotificationsRead(user: String, _ selection: ReadSelection, service: String?, now: Int64,
                                      completion: @escaping StoreCompletion<UnreadCounts>) {
        let all: Bool
        let ids: String
        switch selection {
        case .all: all = true; ids = "[]"
        case .ids(let list): all = false; ids = "[" + list.map(String.init).joined(separator: ",") + "]"
        }
        write({ db in
            // Two statements rather than one with an OR, so each uses its index: the unread
            // index for "all", the primary key for a list of ids.
            let own = all ? """
                UPDATE notifications SET read_at = ?3
                WHERE user_id = ?1 AND read_at IS NULL AND (?4 IS NULL OR service = ?4) AND ?2 = ?2
                """ : """
                UPDATE notifications SET read_at = ?3
                WHERE id IN (SELECT value FROM json_each(?2)) AND user_id = ?1 AND read_at IS NULL
                  AND (?4 IS NULL OR service = ?4)
                """
            try db.statement(own).bind(.text(user), .text(ids), .int(now), .of(service)).run()
            try db.statement("""
                INSERT INTO broadcast_state (notification_id, user_id, read_at)
                SELECT n.id, ?1, ?3 FROM notifications n
                WHERE n.user_id IS NULL AND \(Self.audienceOfUser) AND (?5 OR n.id IN (SELECT value FROM json_each(?2)))
                  AND (?4 IS NULL OR n.service = ?4)
                ON CONFLICT (notification_id, user_id) DO UPDATE SET read_at = COALESCE(read_at, excluded.read_at)
                """).bind(.text(user), .text(ids), .int(now), .of(service), .int(all ? 1 : 0)).run()
            return try Self.unread(db, user: user)
        }, completion)
    }

    public func receipt(_ id: Int64, completion: @escaping StoreCompletion<NotificationReceipt?>) {
        read({ db in
            let s = try db.statement("SELECT \(Self.recordColumns), n.user_id, n.pushed_at FROM notifications n WHERE n.id = ?1")
            try s.bind(.int(id))
            guard try s.step() else { return nil }
            let record = Self.record(s)
            let owner = s.optionalText(9)
            let pushed = !s.isNull(10)
            let mail = try db.statement("SELECT status FROM outbox WHERE notification_id = ?1 ORDER BY id DESC LIMIT 1")
            try mail.bind(.int(id))
            let email = try mail.step() ? mail.text(0) : nil
            if let owner {
                return NotificationReceipt(record: record, addressed: 1, recipients: [
                    .init(user: owner, stored: true, pushed: pushed, read: record.read, email: email),
                ])
            }
            let audience = record.audience ?? "all"
            let count = try db.statement("SELECT COUNT(*) FROM users WHERE \(Self.audienceOfRow)")
            try count.bind(.text(audience))
            let addressed = try count.step() ? Int(count.int(0)) : 0
            let states = try db.statement("""
                SELECT user_id, pushed_at IS NOT NULL, read_at IS NOT NULL FROM broadcast_state
                WHERE notification_id = ?1 ORDER BY user_id LIMIT 1000
                """)
            try states.bind(.int(id))
            var recipients: [NotificationReceipt.Recipient] = []
            while try states.step() {
                recipients.append(.init(user: states.text(0), stored: true, pushed: states.int(1) != 0,
                                        read: states.int(2) != 0, email: nil))
            }
            var r = record
            r.read = false // a broadcast's read state is per user
            return NotificationReceipt(record: r, addressed: addressed, recipients: recipients)
        }, completion)
    }

    public func usersSeen(_ seen: [UserSeen]) {
        guard !seen.isEmpty else { return }
        // One update a user, at its latest time, in id order (as PostgresStore's GROUP BY): a
        // page reload's disconnect and connect, or a user's tabs reconnecting, write one row once.
        var latest: [String: Int64] = [:]
        latest.reserveCapacity(seen.count)
        for s in seen { latest[s.user] = max(latest[s.user] ?? s.at, s.at) }
        let users = latest.sorted { $0.key < $1.key }
        write(background: true, { db in
            let update = try db.statement("UPDATE users SET last_seen_at = MAX(COALESCE(last_seen_at, 0), ?2) WHERE id = ?1")
            for (user, at) in users {
                try update.bind(.text(user), .int(at)).run()
                update.reset()
            }
        }, { _ in })
    }

    // MARK: message notifications

    /// Creates or updates `user`'s one `messages` notification for the message's conversation,
    /// in the words `wording` gives it.
    static func noteMessage(_ db: SQLiteConnection, _ m: StoredMessage, for user: String,
                            wording: MessageNotificationWording) throws -> DeliveredNotification {
        let channel = m.conversation.channel
        // One row per user and conversation: a new message counts on from an unread one and
        // starts again at 1 after a read one. The text follows once the count is known.
        let upsert = try db.statement("""
            INSERT INTO notifications (user_id, service, category, title, body, data, ts, conversation, conversation_seq, conversation_count)
            VALUES (?1, ?2, 'messages', '', '', '', ?3, ?4, ?5, 1)
            ON CONFLICT (user_id, conversation) WHERE conversation IS NOT NULL DO UPDATE SET
                conversation_count = CASE WHEN read_at IS NULL THEN COALESCE(conversation_count, 0) + 1 ELSE 1 END,
                ts = excluded.ts, read_at = NULL, pushed_at = NULL, conversation_seq = excluded.conversation_seq
            RETURNING id, conversation_count
            """)
        try upsert.bind(.text(user), .text(m.conversation.service), .int(m.ts), .text(channel), .int(m.seq))
        guard try upsert.step() else { throw StoreError.internalError("message notification not stored") }
        let (id, count) = (upsert.int(0), upsert.int(1))
        try upsert.run()
        let (title, body) = wording(m, Int(count))
        // The channel holds only [A-Za-z0-9_.@:-]: safe inside a JSON string as it is.
        let data = "{\"channel\":\"\(channel)\",\"seq\":\(m.seq),\"count\":\(count)}"
        try db.statement("UPDATE notifications SET title = ?2, body = ?3, data = ?4 WHERE id = ?1")
            .bind(.int(id), .text(title), .text(body), .text(data)).run()
        let record = NotificationRecord(id: id, service: m.conversation.service, category: "messages", title: title,
                                        body: body, data: data, ts: m.ts, read: false)
        return DeliveredNotification(userId: user, record: record, unread: try unread(db, user: user))
    }

    /// A read mark reached the conversation's `messages` notification: it is read now.
    static func clearMessageNotification(_ db: SQLiteConnection, user: String, _ key: ConversationKey,
                                         upTo mark: Int64, now: Int64) throws -> UnreadCounts? {
        try db.statement("""
            UPDATE notifications SET read_at = ?4
            WHERE user_id = ?1 AND conversation = ?2 AND read_at IS NULL AND conversation_seq <= ?3
            """).bind(.text(user), .text(key.channel), .int(mark), .int(now)).run()
        return db.changes > 0 ? try unread(db, user: user) : nil
    }

    // MARK: stats

    public func dailyCounts(since: Int64, completion: @escaping StoreCompletion<[DailyCount]>) {
        read({ db in
            var table: [String: DailyCount] = [:]
            let messages = try db.statement("""
                SELECT strftime('%Y-%m-%d', m.ts / 1000, 'unixepoch') AS day, c.service, COUNT(*)
                FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.ts >= ?1 GROUP BY day, c.service
                """)
            try messages.bind(.int(since))
            while try messages.step() {
                let k = messages.text(0) + "|" + messages.text(1)
                table[k, default: DailyCount(day: messages.text(0), service: messages.text(1), messages: 0, notifications: 0)]
                    .messages += Int(messages.int(2))
            }
            let notes = try db.statement("""
                SELECT strftime('%Y-%m-%d', ts / 1000, 'unixepoch') AS day, service, COUNT(*)
                FROM notifications WHERE ts >= ?1 GROUP BY day, service
                """)
            try notes.bind(.int(since))
            while try notes.step() {
                let k = notes.text(0) + "|" + notes.text(1)
                table[k, default: DailyCount(day: notes.text(0), service: notes.text(1), messages: 0, notifications: 0)]
                    .notifications += Int(notes.int(2))
            }
            return table.values.sorted { ($0.day, $0.service) < ($1.day, $1.service) }
        }, completion)
    }

    public func userCounts(completion: @escaping StoreCompletion<[String: Int]>) {
        read({ db in
            let s = try db.statement("SELECT role, COUNT(*) FROM users GROUP BY role")
            var out: [String: Int] = [:]
            while try s.step() { out[s.text(0)] = Int(s.int(1)) }
            return out
        }, completion)
    }
}

/// The title and body of a `messages` notification, from the newest message and how many
/// unread messages of its conversation the notification stands for (1 after a read). Pure: it
/// runs inside the writer's transaction.
public typealias MessageNotificationWording = @Sendable (_ message: StoredMessage, _ count: Int) -> (title: String, body: String)
