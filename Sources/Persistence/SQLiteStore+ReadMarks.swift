import Foundation
import Core
import Protocol

// Read marks, conversation summaries and the audit log on SQLite.
extension SQLiteStore {
    /// Moves the sender's read mark to their own new message, which follows someone else's.
    /// Returns the mark (and the unread counts, when it cleared their `messages` notification)
    /// when it passed messages of others; nil when the sender had read up to them already.
    static func moveSenderMark(_ db: SQLiteConnection, _ m: StoredMessage, conversation: Int64) throws -> ReadResult? {
        let old = try db.statement("SELECT seq FROM read_marks WHERE user_id = ?1 AND conversation_id = ?2")
        try old.bind(.text(m.senderId), .int(conversation))
        let previous = try old.step() ? old.int(0) : 0
        try old.run()
        guard previous < m.seq else { return nil }
        try db.statement("""
            INSERT INTO read_marks (user_id, conversation_id, seq) VALUES (?1, ?2, ?3)
            ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = MAX(seq, excluded.seq)
            """).bind(.text(m.senderId), .int(conversation), .int(m.seq)).run()
        guard previous < m.seq - 1 else { return nil }
        return ReadResult(mark: m.seq, clearedUnread: try clearMessageNotification(db, user: m.senderId, m.conversation, upTo: m.seq, now: m.ts))
    }

    public func markRead(user: String, _ key: ConversationKey, seq: Int64, now: Int64, completion: @escaping StoreCompletion<ReadResult>) {
        write({ db in
            guard let conversation = try Self.conversationID(db, key, create: true) else { return ReadResult(mark: 0) }
            // Never beyond the last message, never backwards.
            let s = try db.statement("""
                INSERT INTO read_marks (user_id, conversation_id, seq)
                VALUES (?1, ?2, MIN(?3, (SELECT last_seq FROM conversations WHERE id = ?2)))
                ON CONFLICT (user_id, conversation_id) DO UPDATE SET seq = MAX(seq, excluded.seq)
                RETURNING seq
                """)
            try s.bind(.text(user), .int(conversation), .int(max(0, seq)))
            let mark = try s.step() ? s.int(0) : 0
            try s.run()
            return ReadResult(mark: mark, clearedUnread: try Self.clearMessageNotification(db, user: user, key, upTo: mark, now: now))
        }, completion)
    }

    public func conversations(_ keys: [ConversationKey], for user: String, withNotes: Bool,
                              completion: @escaping StoreCompletion<[ConversationSummary]>) {
        read({ db in
            let notes = withNotes ? "" : " AND internal = 0"
            var out: [ConversationSummary] = []
            for key in keys {
                let agents = try db.statement("SELECT agent_id FROM assignments WHERE service = ?1 AND client_id = ?2")
                try agents.bind(.text(key.service), .text(key.clientId))
                var agentIds: [String] = []
                while try agents.step() { agentIds.append(agents.text(0)) }
                var summary = ConversationSummary(conversation: key, agents: agentIds, lastMessage: nil, unread: 0)
                for id in [key.clientId] + agentIds {
                    let name = try db.statement("SELECT name FROM users WHERE id = ?1")
                    try name.bind(.text(id))
                    if try name.step() { summary.names[id] = name.text(0) }
                }
                let row = try db.statement("""
                    SELECT id, status, status_by, status_at, queued_at IS NOT NULL FROM conversations
                    WHERE service = ?1 AND client_id = ?2
                    """)
                try row.bind(.text(key.service), .text(key.clientId))
                if try row.step() {
                    let conversation = row.int(0)
                    summary.status = ConversationStatus(conversation: key, status: row.text(1), by: row.optionalText(2),
                                                        at: row.optionalInt(3))
                    summary.unassigned = row.int(4) != 0
                    try row.run()
                    let last = try db.statement("SELECT \(Self.messageColumns) FROM messages WHERE conversation_id = ?1\(notes) ORDER BY seq DESC LIMIT 1")
                    try last.bind(.int(conversation))
                    if try last.step() { summary.lastMessage = Self.message(last, key) }
                    let unread = try db.statement("""
                        SELECT COUNT(*) FROM messages WHERE conversation_id = ?1 AND sender_id != ?2\(notes)
                          AND seq > COALESCE((SELECT seq FROM read_marks WHERE user_id = ?2 AND conversation_id = ?1), 0)
                        """)
                    try unread.bind(.int(conversation), .text(user))
                    if try unread.step() { summary.unread = Int(unread.int(0)) }
                }
                out.append(summary)
            }
            return out
        }, completion)
    }

    public func allConversations(service: String?, completion: @escaping StoreCompletion<[ConversationKey]>) {
        read({ db in
            let s = try db.statement("SELECT service, client_id FROM conversations WHERE ?1 IS NULL OR service = ?1")
            try s.bind(.of(service))
            var out: [ConversationKey] = []
            while try s.step() { out.append(ConversationKey(service: s.text(0), clientId: s.text(1))) }
            return out
        }, completion)
    }

    public func recordAudit(actor: String, action: String, target: String, ts: Int64) {
        write({ db in
            try db.statement("INSERT INTO audit_log (actor_id, action, target, ts) VALUES (?1, ?2, ?3, ?4)")
                .bind(.text(actor), .text(action), .text(target), .int(ts)).run()
        }, { _ in })
    }
}
