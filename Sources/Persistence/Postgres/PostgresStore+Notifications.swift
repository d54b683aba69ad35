import Dispatch
import Protocol

// Notifications on PostgreSQL: the behaviour of SQLiteStore+Notifications in PostgreSQL's own
// SQL (arrays and unnest for lists, one statement per list rather than one per item). Several
// nodes write to one database, so two rules are added:
// - A writer counts a user's unread notifications under the user's unread lock (see `unread`
//   and `lockUnread`), so counts in commit (= completion) order never go back.
// - A fan-out chunk locks its fan-out row, so two nodes stepping one fan-out store each chunk
//   once; leases (`claimUnfinishedFanouts`) keep them from both trying.
extension PostgresStore: NotificationStore {
    static let notificationColumns =
        "n.id, n.service, n.category, n.title, n.body, n.data, n.ts, n.read_at IS NOT NULL, n.audience, n.text_escaped"

    /// A row of `notificationColumns`.
    static func notificationRecord(_ rows: PGRows, _ r: Int) -> NotificationRecord {
        let escaped = rows.bool(r, 9)
        return NotificationRecord(id: rows.int(r, 0), service: rows.text(r, 1), category: rows.text(r, 2),
                                  title: original(rows.text(r, 3), escaped: escaped), body: original(rows.text(r, 4), escaped: escaped),
                                  data: original(rows.text(r, 5), escaped: escaped), ts: rows.int(r, 6), read: rows.bool(r, 7),
                                  audience: rows.optionalText(r, 8))
    }

    /// A notification's (or fan-out's) title, body and data as stored, and the row's
    /// `text_escaped` (`storable`).
    static func storableTexts(_ title: String, _ body: String, _ data: String) -> (title: String, body: String, data: String, escaped: Bool) {
        let stored = storable([title, body, data])
        return (stored.texts[0] ?? title, stored.texts[1] ?? body, stored.texts[2] ?? data, stored.escaped)
    }

    /// How long a running fan-out stays leased to the node running it without a step: past it
    /// another node's `claimUnfinishedFanouts` takes it over. A step takes milliseconds and a
    /// failed one is retried within a minute (Notifier's back-off).
    static let fanoutLeaseMs: Int64 = 90_000

    /// The ids of these that have a user row (READ COMMITTED: as committed when it runs).
    static func knownUsers(_ db: PGConnection, _ ids: [String]) throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        let rows = try db.query("SELECT id FROM users WHERE id = ANY($1::text[])", [PGConnection.textArray(ids)])
        var known = Set<String>()
        for r in 0..<rows.count { known.insert(rows.text(r, 0)) }
        return known
    }

    /// Takes the unread lock of each of these users (the one `unread` takes), in id order, held
    /// to the commit; users whose lock the transaction holds already (`PGConnection.unreadLocked`)
    /// cost no round trip. (Two batches whose jobs lock users in crossing orders can still
    /// deadlock: PostgreSQL breaks it and the writer runs the losing batch again.)
    static func lockUnread(_ db: PGConnection, users: [String]) throws {
        let missing = users.filter { !db.unreadLocked.contains($0) }
        guard !missing.isEmpty else { return }
        _ = try db.query("""
            SELECT \(unreadLock(stripe: "s"))
            FROM (SELECT DISTINCT \(unreadStripe(of: "u")) AS s FROM unnest($1::text[]) AS u ORDER BY 1) sorted
            """, [PGConnection.textArray(missing)])
        db.unreadLocked.formUnion(missing)
    }

    /// Each user's unread counts per service (their own unread notifications, and broadcasts
    /// to them not read), in one statement for the whole list. In a writer: under `lockUnread` of these users, taken before.
    static func unreadCounts(_ db: PGConnection, users: [String]) throws -> [String: UnreadCounts] {
        guard !users.isEmpty else { return [:] }
        let rows = try db.query("""
            SELECT u.id, x.service, x.n FROM (SELECT DISTINCT unnest($1::text[]) AS id) u
            CROSS JOIN LATERAL (
                SELECT service, COUNT(*) AS n FROM notifications
                WHERE user_id = u.id AND read_at IS NULL GROUP BY service
                UNION ALL
                SELECT n.service, COUNT(*) FROM notifications n
                WHERE n.user_id IS NULL AND n.audience IN ('all', COALESCE((SELECT role FROM users WHERE id = u.id), ''))
                  AND NOT EXISTS (SELECT 1 FROM broadcast_state s
                                  WHERE s.notification_id = n.id AND s.user_id = u.id AND s.read_at IS NOT NULL)
                GROUP BY n.service
            ) x
            """, [PGConnection.textArray(users)])
        var counts: [String: [String: Int]] = [:]
        for r in 0..<rows.count {
            counts[rows.text(r, 0), default: [:]][rows.text(r, 1), default: 0] += Int(rows.int(r, 2))
        }
        var out: [String: UnreadCounts] = [:]
        for user in users { out[user] = UnreadCounts(byService: counts[user] ?? [:]) }
        return out
    }

    /// Inserts one notification per user (repeats included), in the order given, and their
    /// mails; returns the records in that order.
    private static func insert(_ db: PGConnection, _ c: NotificationContent, users: [String], now: Int64,
                               emailDelayMs: Int64) throws -> [NotificationRecord] {
        guard !users.isEmpty else { return [] }
        let stored = storableTexts(c.title, c.body, c.data)
        // Ids come from the sequence in the order rows reach the insert (the ORDER BY), so
        // ascending ids are the users' order; checked below against the user of each row.
        let rows = try db.query("""
            WITH n AS (
                INSERT INTO notifications (user_id, service, category, title, body, data, ts, text_escaped)
                SELECT t.user_id, $2, $3, $4, $5, $6, $7::bigint, $10::boolean
                FROM unnest($1::text[]) WITH ORDINALITY AS t(user_id, ord) ORDER BY t.ord
                RETURNING id, user_id
            ), mail AS (
                INSERT INTO outbox (notification_id, user_id, mode, status, due_at, created_at)
                SELECT id, user_id, $8::text, 'pending', $9::bigint, $7::bigint FROM n WHERE $8::text IS NOT NULL
            )
            SELECT id, user_id FROM n ORDER BY id
            """, [PGConnection.textArray(users), c.service, c.category, stored.title, stored.body, stored.data, String(now),
                  c.email?.rawValue, String(c.email == .now ? now : now + emailDelayMs), stored.escaped ? "true" : "false"])
        guard rows.count == users.count else { throw StoreError.internalError("notifications not stored") }
        var out: [NotificationRecord] = []
        out.reserveCapacity(users.count)
        for (r, user) in users.enumerated() {
            guard rows.text(r, 1) == user else { throw StoreError.internalError("notification ids out of order") }
            out.append(NotificationRecord(id: rows.int(r, 0), service: c.service, category: c.category, title: c.title,
                                          body: c.body, data: c.data, ts: now, read: false))
        }
        return out
    }

    /// The deliveries for `users` (repeats included) of records just stored: each with the
    /// counts as they stood right after its own insert, as one insert at a time would give.
    private static func deliveries(_ db: PGConnection, _ records: [NotificationRecord], users: [String],
                                   service: String) throws -> [DeliveredNotification] {
        try lockUnread(db, users: users) // its own statement: the count's snapshot comes after the lock
        let counts = try unreadCounts(db, users: users)
        var later: [String: Int] = [:]
        for user in users { later[user, default: 0] += 1 }
        var out: [DeliveredNotification] = []
        for (record, user) in zip(records, users) {
            later[user, default: 1] -= 1
            var unread = counts[user] ?? UnreadCounts()
            unread.byService[service] = (unread.byService[service] ?? 0) - (later[user] ?? 0)
            out.append(DeliveredNotification(userId: user, record: record, unread: UnreadCounts(byService: unread.byService)))
        }
        return out
    }

    /// Runs `body` in a writer job, guarded by an Idempotency-Key when one is claimed (see
    /// SQLiteStore.writeOnce). The claim is an INSERT … ON CONFLICT DO NOTHING: a transaction
    /// of another writer or node holding the same key uncommitted makes it wait for that one's
    /// end, after which the key's stored answer is read (a new statement sees the commit).
    func writeOnce<T: Sendable>(_ claim: IdempotencyClaim<T>?, now: Int64, unread: [String] = [],
                                keep: @escaping @Sendable (T) -> Bool = { _ in true },
                                _ body: @escaping @Sendable (PGConnection) throws -> T,
                                _ completion: @escaping StoreCompletion<Idempotent<T>>) {
        write(lockKey: nil, unread: unread, { db in
            guard let claim else { return .fresh(try body(db)) }
            let claimed = try db.query("""
                INSERT INTO idempotency (key, fingerprint, status, body, created_at) VALUES ($1, $2, 0, '', $3::bigint)
                ON CONFLICT (key) DO NOTHING RETURNING 1
                """, [claim.key, claim.fingerprint, String(now)])
            guard claimed.count == 1 else {
                let seen = try db.query("SELECT fingerprint, status, body FROM idempotency WHERE key = $1", [claim.key])
                guard seen.count == 1 else { throw StoreError.internalError("an idempotency key claimed and gone") }
                return seen.text(0, 0) == claim.fingerprint
                    ? .replay(StoredResponse(status: Int(seen.int(0, 1)), body: seen.text(0, 2))) : .mismatch
            }
            let value = try body(db)
            guard keep(value) else {
                _ = try db.query("DELETE FROM idempotency WHERE key = $1", [claim.key])
                return .fresh(value)
            }
            let answer = claim.render(value)
            _ = try db.query("UPDATE idempotency SET status = $2::bigint, body = $3 WHERE key = $1",
                             [claim.key, String(answer.status), answer.body])
            return .fresh(value)
        }, completion: completion)
    }

    public func createNotifications(_ content: NotificationContent, users: [String], strict: Bool, now: Int64,
                                    emailDelayMs: Int64, claim: IdempotencyClaim<UserNotifications>?,
                                    completion: @escaping StoreCompletion<Idempotent<UserNotifications>>) {
        writeOnce(claim, now: now, unread: users, keep: { if case .refused = $0 { false } else { true } }, { db in
            // In the writer job, not on a reader first: the answer kept under the key must be
            // the one these inserts were made with.
            let known = try Self.knownUsers(db, users)
            let unknown = users.filter { !known.contains($0) }
            if strict && !unknown.isEmpty { return .refused(unknown: unknown) }
            let records = try Self.insert(db, content, users: users, now: now, emailDelayMs: emailDelayMs)
            return .stored(try Self.deliveries(db, records, users: users, service: content.service), unknown: unknown)
        }, completion)
    }

    private static let audienceOfRow = "($1 = 'all' OR role = $1)"

    public func startFanout(_ content: NotificationContent, audience: String, now: Int64,
                            claim: IdempotencyClaim<FanoutStart>?, completion: @escaping StoreCompletion<Idempotent<FanoutStart>>) {
        // The audience is fixed now (users who arrive later are not part of it), counted on a
        // reader so that counting 100,000 users never holds a writer.
        read({ db in
            let rows = try db.query("SELECT COALESCE(MAX(rowid), 0), COUNT(*) FROM users WHERE \(Self.audienceOfRow)", [audience])
            guard rows.count == 1 else { throw StoreError.internalError("no count") }
            return (rows.int(0, 0), Int(rows.int(0, 1)))
        }) { [self] (counted: Result<(Int64, Int), StoreError>) in
            guard case .success(let (last, count)) = counted else {
                if case .failure(let e) = counted { completion(.failure(e)) }
                return
            }
            writeOnce(claim, now: now, { db in
                // Unowned until its first step leases it: the node that started it runs it at
                // once, and one that stopped before that first step (a crash right after the
                // answer) leaves it to the next resume, its own restart included. Steps lock the
                // row and move its cursor, so two nodes stepping it never store a user twice.
                let stored = Self.storableTexts(content.title, content.body, content.data)
                let rows = try db.query("""
                    INSERT INTO fanouts (audience, service, category, title, body, data, email, last_user_rowid, total,
                                         created_at, lease_until, text_escaped)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint, $9::bigint, $10::bigint, $10::bigint, $11::boolean)
                    RETURNING id
                    """, [audience, content.service, content.category, stored.title, stored.body, stored.data,
                          content.email?.rawValue, String(last), String(count), String(now),
                          stored.escaped ? "true" : "false"])
                guard rows.count == 1 else { throw StoreError.internalError("fan-out not stored") }
                return FanoutStart(id: rows.int(0, 0), count: count)
            }, completion)
        }
    }

    public func fanoutStep(_ id: Int64, limit: Int, now: Int64, emailDelayMs: Int64,
                           online: Set<String>, completion: @escaping StoreCompletion<FanoutStep>) {
        write({ db in
            let started = DispatchTime.now().uptimeNanoseconds
            // The row lock makes a second node stepping the same fan-out wait, then read the
            // cursor this step leaves: each chunk is stored once.
            let f = try db.query("""
                SELECT audience, service, category, title, body, data, email, last_user_rowid, cursor, text_escaped
                FROM fanouts WHERE id = $1::bigint AND finished_at IS NULL FOR UPDATE
                """, [String(id)])
            guard f.count == 1 else { return FanoutStep(delivered: [], stored: 0, finished: true) }
            let audience = f.text(0, 0)
            let escaped = f.bool(0, 9)
            let content = NotificationContent(service: f.text(0, 1), category: f.text(0, 2),
                                              title: Self.original(f.text(0, 3), escaped: escaped),
                                              body: Self.original(f.text(0, 4), escaped: escaped),
                                              data: Self.original(f.text(0, 5), escaped: escaped),
                                              email: f.optionalText(0, 6).flatMap(EmailMode.init(rawValue:)))
            let last = f.int(0, 7)
            var cursor = f.int(0, 8)
            let users = try db.query("""
                SELECT rowid, id FROM users WHERE rowid > $2::bigint AND rowid <= $3::bigint AND \(Self.audienceOfRow)
                ORDER BY rowid LIMIT $4::bigint
                """, [audience, String(cursor), String(last), String(limit)])
            var batch: [String] = []
            for r in 0..<users.count {
                cursor = users.int(r, 0)
                batch.append(users.text(r, 1))
            }
            let pushTo = batch.filter { online.contains($0) }
            let records = try Self.insert(db, content, users: batch, now: now, emailDelayMs: emailDelayMs)
            var delivered: [DeliveredNotification] = []
            if !pushTo.isEmpty {
                try Self.lockUnread(db, users: pushTo)
                let counts = try Self.unreadCounts(db, users: pushTo)
                for (record, user) in zip(records, batch) where online.contains(user) {
                    delivered.append(DeliveredNotification(userId: user, record: record, unread: counts[user] ?? UnreadCounts()))
                }
            }
            let finished = batch.count < limit
            _ = try db.query("""
                UPDATE fanouts SET cursor = $2::bigint, finished_at = $3::bigint,
                    lease_until = CASE WHEN $3::bigint IS NULL THEN $4::bigint + $5::bigint END
                WHERE id = $1::bigint
                """, [String(id), String(cursor), finished ? String(now) : nil, String(now), String(Self.fanoutLeaseMs)])
            let busy = Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000)
            return FanoutStep(delivered: delivered, stored: batch.count, finished: finished, busyMicros: busy)
        }, completion: completion)
    }

    public func unfinishedFanouts(completion: @escaping StoreCompletion<[Int64]>) {
        read({ db in
            let rows = try db.query("SELECT id FROM fanouts WHERE finished_at IS NULL ORDER BY id", [])
            return (0..<rows.count).map { rows.int($0, 0) }
        }, completion: completion)
    }

    public func claimUnfinishedFanouts(node: String, now: Int64, completion: @escaping StoreCompletion<[Int64]>) {
        write({ db in
            // SKIP LOCKED: a fan-out another node is stepping or claiming right now is theirs.
            let rows = try db.query("""
                UPDATE fanouts SET owner = $1, lease_until = $2::bigint + $3::bigint
                WHERE id IN (SELECT id FROM fanouts
                             WHERE finished_at IS NULL AND (lease_until IS NULL OR lease_until <= $2::bigint OR owner = $1)
                             ORDER BY id FOR UPDATE SKIP LOCKED)
                RETURNING id
                """, [node, String(now), String(Self.fanoutLeaseMs)])
            return (0..<rows.count).map { rows.int($0, 0) }.sorted()
        }, completion: completion)
    }

    public func createBroadcast(audience: String, title: String, body: String, data: String, now: Int64,
                                claim: IdempotencyClaim<NotificationRecord>?,
                                completion: @escaping StoreCompletion<Idempotent<NotificationRecord>>) {
        writeOnce(claim, now: now, { db in
            let stored = Self.storableTexts(title, body, data)
            let rows = try db.query("""
                INSERT INTO notifications (audience, service, category, title, body, data, ts, text_escaped)
                VALUES ($1, 'platform', 'updates', $2, $3, $4, $5::bigint, $6::boolean) RETURNING id
                """, [audience, stored.title, stored.body, stored.data, String(now), stored.escaped ? "true" : "false"])
            guard rows.count == 1 else { throw StoreError.internalError("broadcast not stored") }
            return NotificationRecord(id: rows.int(0, 0), service: "platform", category: "updates", title: title,
                                      body: body, data: data, ts: now, read: false, audience: audience)
        }, completion)
    }

    public func recordPushes(_ pushes: [PushedNotification]) {
        guard !pushes.isEmpty else { return }
        let ids = PGConnection.textArray(pushes.map { String($0.notification) })
        let users = PGConnection.textArray(pushes.map(\.user))
        let times = PGConnection.textArray(pushes.map { String($0.at) })
        writeAndForget(background: true) { db in
            // The first push of a pair counts (as one update at a time would keep). Rows are
            // locked in (notification, user) order, so two nodes recording pushes of the same
            // notifications take turns instead of deadlocking.
            _ = try db.query("""
                WITH p AS (
                    SELECT DISTINCT ON (id, user_id) id, user_id, at
                    FROM unnest($1::bigint[], $2::text[], $3::bigint[]) WITH ORDINALITY AS t(id, user_id, at, ord)
                    ORDER BY id, user_id, ord
                ), locked AS (
                    SELECT n.id FROM notifications n JOIN p ON n.id = p.id AND n.user_id = p.user_id
                    ORDER BY n.id FOR NO KEY UPDATE OF n
                ), own AS (
                    UPDATE notifications n SET pushed_at = COALESCE(n.pushed_at, p.at)
                    FROM p WHERE n.id = p.id AND n.user_id = p.user_id AND n.id IN (SELECT id FROM locked)
                )
                INSERT INTO broadcast_state (notification_id, user_id, pushed_at)
                SELECT p.id, p.user_id, p.at FROM p JOIN notifications n ON n.id = p.id AND n.user_id IS NULL
                ORDER BY p.id, p.user_id
                ON CONFLICT (notification_id, user_id) DO UPDATE
                    SET pushed_at = COALESCE(broadcast_state.pushed_at, excluded.pushed_at)
                """, [ids, users, times])
        }
    }

    public func notifications(for user: String, _ q: NotificationQuery, completion: @escaping StoreCompletion<NotificationPage>) {
        read({ db in
            let rows = try db.query("""
                SELECT \(Self.notificationColumns) FROM notifications n
                WHERE n.user_id = $1 AND n.id < $2::bigint AND ($3::text IS NULL OR n.service = $3)
                  AND (NOT $4::boolean OR n.read_at IS NULL)
                UNION ALL
                SELECT n.id, n.service, n.category, n.title, n.body, n.data, n.ts, s.read_at IS NOT NULL, n.audience, n.text_escaped
                FROM notifications n LEFT JOIN broadcast_state s ON s.notification_id = n.id AND s.user_id = $1
                WHERE n.user_id IS NULL AND \(Self.audienceOfUser) AND n.id < $2::bigint
                  AND ($3::text IS NULL OR n.service = $3) AND (NOT $4::boolean OR s.read_at IS NULL)
                ORDER BY 1 DESC LIMIT $5::bigint
                """, [user, String(q.before ?? Int64.max), q.service, q.unreadOnly ? "true" : "false", String(q.limit + 1)])
            var items = (0..<rows.count).map { Self.notificationRecord(rows, $0) }
            let more = items.count > q.limit
            if more { items.removeLast() }
            return NotificationPage(items: items, unread: try Self.unread(db, user: user, locking: false), more: more)
        }, completion: completion)
    }

    public func markNotificationsRead(user: String, _ selection: ReadSelection, service: String?, now: Int64,
                                      completion: @escaping StoreCompletion<UnreadCounts>) {
        let all: Bool
        let ids: String
        switch selection {
        case .all: all = true; ids = "{}"
        case .ids(let list): all = false; ids = PGConnection.textArray(list.map(String.init))
        }
        write(lockKey: nil, unread: [user], { db in
            // Two statements rather than one with an OR, so each uses its index: the unread
            // index for "all", the primary key for a list of ids.
            let own = all ? """
                UPDATE notifications SET read_at = $3::bigint
                WHERE user_id = $1 AND read_at IS NULL AND ($4::text IS NULL OR service = $4) AND $2::bigint[] IS NOT NULL
                """ : """
                UPDATE notifications SET read_at = $3::bigint
                WHERE id = ANY($2::bigint[]) AND user_id = $1 AND read_at IS NULL AND ($4::text IS NULL OR service = $4)
                """
            _ = try db.query(own, [user, ids, String(now), service])
            _ = try db.query("""
                INSERT INTO broadcast_state (notification_id, user_id, read_at)
                SELECT n.id, $1, $3::bigint FROM notifications n
                WHERE n.user_id IS NULL AND \(Self.audienceOfUser) AND ($5::boolean OR n.id = ANY($2::bigint[]))
                  AND ($4::text IS NULL OR n.service = $4)
                ORDER BY n.id
                ON CONFLICT (notification_id, user_id) DO UPDATE SET read_at = COALESCE(broadcast_state.read_at, excluded.read_at)
                """, [user, ids, String(now), service, all ? "true" : "false"])
            return try Self.unread(db, user: user)
        }, completion: completion)
    }

    public func receipt(_ id: Int64, completion: @escaping StoreCompletion<NotificationReceipt?>) {
        read({ db in
            let rows = try db.query("""
                SELECT \(Self.notificationColumns), n.user_id, n.pushed_at IS NOT NULL,
                       (SELECT status FROM outbox WHERE notification_id = n.id ORDER BY id DESC LIMIT 1)
                FROM notifications n WHERE n.id = $1::bigint
                """, [String(id)])
            guard rows.count == 1 else { return nil }
            let record = Self.notificationRecord(rows, 0)
            let pushed = rows.bool(0, 11)
            let email = rows.optionalText(0, 12)
            if let owner = rows.optionalText(0, 10) {
                return NotificationReceipt(record: record, addressed: 1, recipients: [
                    .init(user: owner, stored: true, pushed: pushed, read: record.read, email: email),
                ])
            }
            let count = try db.query("SELECT COUNT(*) FROM users WHERE \(Self.audienceOfRow)", [record.audience ?? "all"])
            let addressed = count.count == 1 ? Int(count.int(0, 0)) : 0
            let states = try db.query("""
                SELECT user_id, pushed_at IS NOT NULL, read_at IS NOT NULL FROM broadcast_state
                WHERE notification_id = $1::bigint ORDER BY user_id LIMIT 1000
                """, [String(id)])
            let recipients = (0..<states.count).map {
                NotificationReceipt.Recipient(user: states.text($0, 0), stored: true, pushed: states.bool($0, 1),
                                              read: states.bool($0, 2), email: nil)
            }
            var r = record
            r.read = false // a broadcast's read state is per user
            return NotificationReceipt(record: r, addressed: addressed, recipients: recipients)
        }, completion: completion)
    }

    public func usersSeen(_ seen: [UserSeen]) {
        guard !seen.isEmpty else { return }
        let users = PGConnection.textArray(seen.map(\.user))
        let times = PGConnection.textArray(seen.map { String($0.at) })
        writeAndForget(background: true) { db in
            // The rows are locked in id order first, so two nodes updating the same users take
            // turns instead of deadlocking; then each gets its latest time.
            _ = try db.query("SELECT 1 FROM users WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE", [users])
            _ = try db.query("""
                UPDATE users u SET last_seen_at = GREATEST(COALESCE(u.last_seen_at, 0), s.at)
                FROM (SELECT user_id, MAX(at) AS at FROM unnest($1::text[], $2::bigint[]) AS t(user_id, at) GROUP BY user_id) s
                WHERE u.id = s.user_id
                """, [users, times])
        }
    }

    // MARK: stats

    public func dailyCounts(since: Int64, completion: @escaping StoreCompletion<[DailyCount]>) {
        read({ db in
            // A day is the UTC date of a millisecond time (strftime('%Y-%m-%d', ts/1000, 'unixepoch') on SQLite).
            let rows = try db.query("""
                SELECT 'm', to_char(to_timestamp(m.ts / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, c.service, COUNT(*)
                FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.ts >= $1::bigint GROUP BY 2, 3
                UNION ALL
                SELECT 'n', to_char(to_timestamp(ts / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), service, COUNT(*)
                FROM notifications WHERE ts >= $1::bigint GROUP BY 2, 3
                """, [String(since)])
            var table: [String: DailyCount] = [:]
            for r in 0..<rows.count {
                let (d, s, n) = (rows.text(r, 1), rows.text(r, 2), Int(rows.int(r, 3)))
                var entry = table[d + "|" + s] ?? DailyCount(day: d, service: s, messages: 0, notifications: 0)
                if rows.text(r, 0) == "m" { entry.messages += n } else { entry.notifications += n }
                table[d + "|" + s] = entry
            }
            return table.values.sorted { ($0.day, $0.service) < ($1.day, $1.service) }
        }, completion: completion)
    }

    public func userCounts(completion: @escaping StoreCompletion<[String: Int]>) {
        read({ db in
            let rows = try db.query("SELECT role, COUNT(*) FROM users GROUP BY role", [])
            var out: [String: Int] = [:]
            for r in 0..<rows.count { out[rows.text(r, 0)] = Int(rows.int(r, 1)) }
            return out
        }, completion: completion)
    }
}
