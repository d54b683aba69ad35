import Core
import Foundation
import Protocol

// Users, assignments, messages, read marks and summaries on PostgreSQL.
extension PostgresStore {
    // MARK: users

    public func upsertUser(_ user: UserRecord, now: Int64, completion: @escaping StoreCompletion<UserRecord>) {
        write({ db in
            _ = try db.query("""
                INSERT INTO users (id, role, name, email, services, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6::bigint, $6::bigint)
                ON CONFLICT (id) DO UPDATE SET role = $2, name = $3, email = COALESCE($4, users.email),
                    services = $5, updated_at = $6::bigint
                """, [user.id, user.role, user.name, user.email, user.services?.joined(separator: ","), "\(now)"])
            return user
        }, completion: completion)
    }

    public func user(_ id: String, completion: @escaping StoreCompletion<UserRecord?>) {
        read({ db in
            let r = try db.query("SELECT id, role, name, email, services FROM users WHERE id = $1", [id])
            guard r.count > 0 else { return nil }
            return UserRecord(id: r.text(0, 0), role: r.text(0, 1), name: r.text(0, 2), email: r.optionalText(0, 3),
                              services: r.optionalText(0, 4).map { $0.split(separator: ",").map(String.init) })
        }, completion: completion)
    }

    // MARK: assignments

    public func setAssignment(_ a: Assignment, now: Int64, completion: @escaping StoreCompletion<String?>) {
        let key = a.conversation
        let webhooks = webhookOutbox
        write(lockKey: key.channel, { db in
            try Self.lockForWebhook(db, key, webhooks)
            let old = try db.query("SELECT agent_id FROM assignments WHERE service = $1 AND client_id = $2 FOR UPDATE",
                                   [key.service, key.clientId])
            _ = try db.query("""
                INSERT INTO assignments (service, client_id, agent_id, created_at) VALUES ($1, $2, $3, $4::bigint)
                ON CONFLICT (service, client_id) DO UPDATE SET agent_id = $3, created_at = $4::bigint
                """, [key.service, key.clientId, a.agentId, "\(now)"])
            try Self.dequeue(db, key, agent: a.agentId, now: now)
            let previous = old.count > 0 ? old.text(0, 0) : nil
            if previous != a.agentId {
                _ = try webhooks.enqueue(db, .assignmentChanged, orderingKey: key.channel, now: now) {
                    $0.assignmentEventFields(key, agent: a.agentId, previous: previous)
                }
            }
            return previous
        }, completion: completion)
    }

    public func removeAssignment(_ key: ConversationKey, completion: @escaping StoreCompletion<String?>) {
        let webhooks = webhookOutbox
        write(lockKey: key.channel, { db in
            try Self.lockForWebhook(db, key, webhooks)
            let r = try db.query("DELETE FROM assignments WHERE service = $1 AND client_id = $2 RETURNING agent_id",
                                 [key.service, key.clientId])
            guard r.count > 0 else { return nil }
            let removed = r.text(0, 0), now = wallMillis()
            _ = try webhooks.enqueue(db, .assignmentChanged, orderingKey: key.channel, now: now) {
                $0.assignmentEventFields(key, agent: nil, previous: removed)
            }
            try Self.requeue(db, key, now: now, webhooks: webhooks)
            return removed
        }, completion: completion)
    }

    public func allAssignments(completion: @escaping StoreCompletion<[Assignment]>) {
        read({ db in
            let r = try db.query("SELECT service, client_id, agent_id FROM assignments ORDER BY service, client_id")
            return (0..<r.count).map {
                Assignment(conversation: ConversationKey(service: r.text($0, 0), clientId: r.text($0, 1)), agentId: r.text($0, 2))
            }
        }, completion: completion)
    }

    // MARK: messages

    public func appendMessage(_ m: NewMessage, notify: [String], completion: @escaping StoreCompletion<AppendResult>) {
        let wording = messageWording, webhooks = webhookOutbox
        let (text, escaped) = Self.storable(m.text)
        let terms = searchTerms(m.text)
        write(lockKey: m.conversation.channel, unread: notify + [m.sender.id], { db in
            // Duplicate check, locked seq bump, insert, counter update and a client's desk
            // changes in one round trip.
            let r = try db.query("""
                SELECT * FROM hub_append($1, $2, $3, $4, $5, $6, $7::boolean, $8::bigint, $9, $10::boolean, $11::boolean, $12)
                """, [
                m.conversation.service, m.conversation.clientId, m.sender.id, m.sender.role, m.sender.name,
                text, escaped ? "t" : "f", "\(m.ts)", m.clientMsgId, m.isInternal ? "t" : "f", m.isFromClient ? "t" : "f",
                terms,
            ])
            guard r.count == 1 else { throw StoreError.internalError("hub_append returned \(r.count) rows") }
            if r.bool(0, 0) {
                let key = ConversationKey(service: r.text(0, 5), clientId: r.text(0, 6))
                let first = StoredMessage(conversation: key, seq: r.int(0, 3), msgId: r.int(0, 2), senderId: m.sender.id,
                                          senderRole: r.text(0, 7), senderName: r.text(0, 8),
                                          text: Self.original(r.text(0, 9), escaped: r.bool(0, 10)), ts: r.int(0, 11),
                                          clientMsgId: m.clientMsgId)
                return AppendResult(message: first, duplicate: true)
            }
            let conversation = r.int(0, 1)
            let stored = StoredMessage(conversation: m.conversation, seq: r.int(0, 3), msgId: r.int(0, 2),
                                       senderId: m.sender.id, senderRole: m.sender.role, senderName: m.sender.name,
                                       text: m.text, ts: m.ts, clientMsgId: m.clientMsgId, isInternal: m.isInternal,
                                       attachments: m.attachments)
            if let attachments = AttachmentsColumn.encode(m.attachments) {
                _ = try db.query("UPDATE messages SET attachments = $2 WHERE id = $1::bigint", ["\(stored.msgId)", attachments])
            }
            try webhooks.enqueue(db, .messageCreated, orderingKey: m.conversation.channel, now: m.ts) { $0.messageFields(stored) }
            let desk = try Self.clientWrote(db, stored, reopened: r.bool(0, 12), queued: r.bool(0, 13), webhooks: webhooks)
            // Recipients not watching the conversation get (or see updated) their one
            // `messages` notification for it, in the same transaction (their unread locks
            // taken at the batch's start: `unread:` above, or here for the users told of a
            // newly queued conversation because none of them is online).
            var recipients: [String] = []
            var seen: Set<String> = [m.sender.id]
            for user in notify where seen.insert(user).inserted { recipients.append(user) }
            if desk.queued {
                let told = try Self.users(db, roles: m.queueNotifyRoles).filter { seen.insert($0).inserted }
                try Self.lockUnread(db, users: told)
                recipients += told
            }
            var records: [NotificationRecord] = []
            for user in recipients { records.append(try Self.noteMessage(db, stored, for: user, wording: wording)) }
            // Counted once for all, after every upsert: a user's counts depend on their own rows only.
            try Self.lockUnread(db, users: recipients)
            let counts = try Self.unreadCounts(db, users: recipients)
            let notified = zip(recipients, records).map { user, record in
                DeliveredNotification(userId: user, record: record, unread: counts[user] ?? UnreadCounts())
            }
            // Whoever replies has read what came before (own messages never count as unread).
            let marks = r.bool(0, 4) && !Self.keepsNoReadMark(m.sender.role)
            let senderRead = marks ? try Self.moveSenderMark(db, stored, conversation: conversation) : nil
            return AppendResult(message: stored, duplicate: false, notifications: notified, senderRead: senderRead,
                                senderMarkMoved: marks, reopened: desk.reopened, queued: desk.queued)
        }, completion: completion)
    }

    public func messages(_ key: ConversationKey, after: Int64, limit: Int, completion: @escaping StoreCompletion<MessagePage>) {
        read({ db in try Self.messages(db, key, after: after, limit: limit) }, completion: completion)
    }

    /// Messages with seq > `after` in one conversation, ascending, at most `limit`.
    static func messages(_ db: PGConnection, _ key: ConversationKey, after: Int64, limit: Int) throws -> MessagePage {
        let r = try db.query("""
            SELECT \(Self.messageColumns) FROM messages
            WHERE conversation_id = (SELECT id FROM conversations WHERE service = $1 AND client_id = $2)
              AND seq > $3::bigint ORDER BY seq ASC LIMIT $4::bigint
            """, [key.service, key.clientId, "\(after)", "\(limit + 1)"])
        var out = (0..<r.count).map { Self.message(r, $0, key) }
        let more = out.count > limit
        if more { out.removeLast() }
        return MessagePage(messages: out, more: more)
    }

    public func messages(_ key: ConversationKey, before: Int64?, limit: Int, withNotes: Bool,
                         completion: @escaping StoreCompletion<MessagePage>) {
        read({ db in
            let r = try db.query("""
                SELECT \(Self.messageColumns) FROM messages
                WHERE conversation_id = (SELECT id FROM conversations WHERE service = $1 AND client_id = $2)
                  AND seq < $3::bigint AND ($5::boolean OR NOT internal) ORDER BY seq DESC LIMIT $4::bigint
                """, [key.service, key.clientId, "\(before ?? Int64.max)", "\(limit + 1)", withNotes ? "t" : "f"])
            var out = (0..<r.count).map { Self.message(r, $0, key) }
            let more = out.count > limit
            if more { out.removeLast() }
            return MessagePage(messages: out.reversed(), more: more)
        }, completion: completion)
    }

    public func lastSeq(_ key: ConversationKey, completion: @escaping StoreCompletion<Int64>) {
        read({ db in
            let r = try db.query("SELECT last_seq FROM conversations WHERE service = $1 AND client_id = $2", [key.service, key.clientId])
            return r.count > 0 ? r.int(0, 0) : 0
        }, completion: completion)
    }

    /// Keys per statement in `lastSeqs` (two text arrays of this many elements).
    static let lastSeqsChunk = 1_000

    public func lastSeqs(_ keys: [ConversationKey], completion: @escaping StoreCompletion<[ConversationKey: Int64]>) {
        read({ db in
            var out: [ConversationKey: Int64] = [:]
            let unique = Array(Set(keys))
            for start in stride(from: 0, to: unique.count, by: Self.lastSeqsChunk) {
                let chunk = unique[start..<min(start + Self.lastSeqsChunk, unique.count)]
                for key in chunk { out[key] = 0 }
                let r = try db.query("""
                    SELECT c.service, c.client_id, c.last_seq
                    FROM unnest($1::text[], $2::text[]) AS k(service, client_id)
                    JOIN conversations c ON c.service = k.service AND c.client_id = k.client_id
                    """, [PGConnection.textArray(chunk.map(\.service)), PGConnection.textArray(chunk.map(\.clientId))])
                for i in 0..<r.count { out[ConversationKey(service: r.text(i, 0), clientId: r.text(i, 1))] = r.int(i, 2) }
            }
            return out
        }, completion: completion)
    }

    public func conversationState(_ key: ConversationKey, messagesAfter: Int64?, limit: Int,
                                  completion: @escaping StoreCompletion<ConversationState>) {
        read({ db in // one REPEATABLE READ transaction: the row, the marks and the page are one snapshot
            let c = try db.query("SELECT id, last_seq FROM conversations WHERE service = $1 AND client_id = $2", [key.service, key.clientId])
            guard c.count > 0 else { return ConversationState(lastSeq: 0, readMarks: [:], page: .empty) }
            let marks = try db.query("SELECT user_id, seq FROM read_marks WHERE conversation_id = $1::bigint", ["\(c.int(0, 0))"])
            var out: [String: Int64] = [:]
            for i in 0..<marks.count { out[marks.text(i, 0)] = marks.int(i, 1) }
            let page = try messagesAfter.map { try Self.messages(db, key, after: $0, limit: limit) } ?? .empty
            return ConversationState(lastSeq: c.int(0, 1), readMarks: out, page: page)
        }, completion: completion)
    }

    // MARK: stats

    public func storedTotals(completion: @escaping StoreCompletion<StoredTotals>) {
        read({ db in
            let r = try db.query("SELECT COALESCE(SUM(messages), 0), COALESCE(SUM(notifications), 0) FROM totals")
            return StoredTotals(messages: Int(r.int(0, 0)), notifications: Int(r.int(0, 1)))
        }, completion: completion)
    }

    // MARK: read marks, summaries, audit

    /// Moves the sender's read mark to their own new message, which follows someone else's.
    /// Returns the mark (and the unread counts, when it cleared their `messages` notification)
    /// when it passed messages of others; nil when the sender had read up to them already.
    static func moveSenderMark(_ db: PGConnection, _ m: StoredMessage, conversation: Int64) throws -> ReadResult? {
        let old = try db.query("SELECT seq FROM read_marks WHERE user_id = $1 AND conversation_id = $2::bigint",
                               [m.senderId, "\(conversation)"])
        let previous = old.count > 0 ? old.int(0, 0) : 0
        guard previous < m.seq else { return nil }
        _ = try db.query("""
            INSERT INTO read_marks (user_id, conversation_id, seq) VALUES ($1, $2::bigint, $3::bigint)
            ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = GREATEST(read_marks.seq, excluded.seq)
            """, [m.senderId, "\(conversation)", "\(m.seq)"])
        guard previous < m.seq - 1 else { return nil }
        return ReadResult(mark: m.seq, clearedUnread: try clearMessageNotification(db, user: m.senderId, m.conversation, upTo: m.seq, now: m.ts))
    }

    public func markRead(user: String, _ key: ConversationKey, seq: Int64, now: Int64, completion: @escaping StoreCompletion<ReadResult>) {
        write(lockKey: key.channel, unread: [user], { db in
            _ = try db.query("INSERT INTO conversations (service, client_id) VALUES ($1, $2) ON CONFLICT (service, client_id) DO NOTHING",
                             [key.service, key.clientId])
            // The conversation's row first, as every append takes it first: a read and an append
            // on one conversation (other nodes' writers) then never hold its notification rows in
            // opposite orders.
            let c = try db.query("SELECT id, last_seq FROM conversations WHERE service = $1 AND client_id = $2 FOR UPDATE",
                                 [key.service, key.clientId])
            guard c.count == 1 else { throw StoreError.internalError("conversation row missing") }
            // Never beyond the last message, never backwards.
            let r = try db.query("""
                INSERT INTO read_marks (user_id, conversation_id, seq) VALUES ($1, $2::bigint, LEAST($3::bigint, $4::bigint))
                ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = GREATEST(read_marks.seq, excluded.seq)
                RETURNING seq
                """, [user, "\(c.int(0, 0))", "\(max(0, seq))", "\(c.int(0, 1))"])
            let mark = r.count > 0 ? r.int(0, 0) : 0
            return ReadResult(mark: mark, clearedUnread: try Self.clearMessageNotification(db, user: user, key, upTo: mark, now: now))
        }, completion: completion)
    }

    /// One statement for every key (an admin's list is every conversation): the keys in order
    /// (`WITH ORDINALITY`), each with its last message, the user's unread count, its agents and
    /// the names of its client and agents.
    public func conversations(_ keys: [ConversationKey], for user: String, withNotes: Bool,
                              completion: @escaping StoreCompletion<[ConversationSummary]>) {
        read({ db in
            guard !keys.isEmpty else { return [] }
            let r = try db.query("""
                SELECT m.seq, m.id, m.sender_id, m.sender_role, m.sender_name, m.text, m.ts, m.client_msg_id, m.text_escaped,
                    m.internal, m.attachments, m.edited_at, m.deleted_at, unread.n, a.agents, names.pairs,
                    COALESCE(c.status, 'open'), c.status_by, c.status_at, c.queued_at IS NOT NULL
                FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(service, client_id, i)
                LEFT JOIN conversations c ON c.service = k.service AND c.client_id = k.client_id
                LEFT JOIN LATERAL (SELECT * FROM messages WHERE conversation_id = c.id AND ($4::boolean OR NOT internal)
                                   ORDER BY seq DESC LIMIT 1) m ON true
                CROSS JOIN LATERAL (
                    SELECT COUNT(*) AS n FROM messages u WHERE u.conversation_id = c.id AND u.sender_id <> $3
                      AND ($4::boolean OR NOT u.internal)
                      AND u.seq > COALESCE((SELECT seq FROM read_marks WHERE user_id = $3 AND conversation_id = c.id), 0)) unread
                CROSS JOIN LATERAL (
                    SELECT COALESCE(json_agg(agent_id ORDER BY agent_id), '[]') AS agents, array_agg(agent_id) AS ids
                    FROM assignments WHERE service = k.service AND client_id = k.client_id) a
                CROSS JOIN LATERAL (
                    SELECT COALESCE(json_object_agg(id, name), '{}') AS pairs
                    FROM users WHERE id = k.client_id OR id = ANY(a.ids)) names
                ORDER BY k.i
                """, [PGConnection.textArray(keys.map(\.service)), PGConnection.textArray(keys.map(\.clientId)), user,
                      withNotes ? "t" : "f"])
            guard r.count == keys.count else { throw StoreError.internalError("conversations returned \(r.count) rows for \(keys.count) keys") }
            let decoder = JSONDecoder()
            return try keys.enumerated().map { row, key in
                let agents = try decoder.decode([String].self, from: Data(r.text(row, 14).utf8))
                var summary = ConversationSummary(conversation: key, agents: agents,
                                                  lastMessage: r.isNull(row, 0) ? nil : Self.message(r, row, key),
                                                  unread: Int(r.int(row, 13)))
                summary.names = try decoder.decode([String: String].self, from: Data(r.text(row, 15).utf8))
                summary.status = ConversationStatus(conversation: key, status: r.text(row, 16), by: r.optionalText(row, 17),
                                                    at: r.isNull(row, 18) ? nil : r.int(row, 18))
                summary.unassigned = !r.isNull(row, 19) && r.bool(row, 19)
                return summary
            }
        }, completion: completion)
    }

    public func allConversations(service: String?, completion: @escaping StoreCompletion<[ConversationKey]>) {
        read({ db in
            let r = try db.query("SELECT service, client_id FROM conversations WHERE $1::text IS NULL OR service = $1 ORDER BY id",
                                 [service])
            return (0..<r.count).map { ConversationKey(service: r.text($0, 0), clientId: r.text($0, 1)) }
        }, completion: completion)
    }

    public func recordAudit(actor: String, action: String, target: String, ts: Int64) {
        writeAndForget(background: false) { db in
            _ = try db.query("INSERT INTO audit_log (actor_id, action, target, ts) VALUES ($1, $2, $3, $4::bigint)",
                             [actor, action, target, "\(ts)"])
        }
    }
}
