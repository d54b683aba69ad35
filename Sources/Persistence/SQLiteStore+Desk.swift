import Core
import Protocol

// The support desk on SQLite: a conversation's status, the queue of conversations whose client
// wrote with no agent to serve them, and claims (docs/protocol.md "Support desk").
/// What a client's message changed at the desk.
struct DeskChange {
    var reopened: ConversationStatus? = nil
    var queued = false
}

extension SQLiteStore {
    /// A client's message, in its append's transaction: reopens a resolved conversation and
    /// queues one that no agent serves. Answers the status it set and whether it queued it.
    static func clientWrote(_ db: SQLiteConnection, conversation: Int64, _ m: NewMessage) throws -> DeskChange {
        let find = try db.statement("""
            SELECT status = 'resolved', queued_at IS NULL AND NOT EXISTS (
                SELECT 1 FROM assignments a WHERE a.service = c.service AND a.client_id = c.client_id)
            FROM conversations c WHERE id = ?1
            """)
        try find.bind(.int(conversation))
        guard try find.step() else { return DeskChange() }
        let reopen = find.int(0) != 0, queue = find.int(1) != 0
        try find.run()
        guard reopen || queue else { return DeskChange() }
        try db.statement("""
            UPDATE conversations SET
                status = CASE WHEN ?4 THEN 'open' ELSE status END,
                status_by = CASE WHEN ?4 THEN ?2 ELSE status_by END,
                status_at = CASE WHEN ?4 THEN ?3 ELSE status_at END,
                queued_at = CASE WHEN ?5 THEN ?3 ELSE queued_at END
            WHERE id = ?1
            """).bind(.int(conversation), .text(m.sender.id), .int(m.ts), .int(reopen ? 1 : 0), .int(queue ? 1 : 0)).run()
        return DeskChange(reopened: reopen ? ConversationStatus(conversation: m.conversation, status: "open", by: m.sender.id, at: m.ts) : nil,
                          queued: queue)
    }

    /// Every user of `roles` (the users told of a newly queued conversation).
    static func users(_ db: SQLiteConnection, roles: [String]) throws -> [String] {
        var out: [String] = []
        let s = try db.statement("SELECT id FROM users WHERE role = ?1 ORDER BY id")
        for role in roles {
            s.reset()
            try s.bind(.text(role))
            while try s.step() { out.append(s.text(0)) }
        }
        return out
    }

    /// An agent serves it now: out of the queue.
    static func dequeue(_ db: SQLiteConnection, _ key: ConversationKey) throws {
        try db.statement("UPDATE conversations SET queued_at = NULL WHERE service = ?1 AND client_id = ?2 AND queued_at IS NOT NULL")
            .bind(.text(key.service), .text(key.clientId)).run()
    }

    /// Its agent was removed: back in the queue if the client ever wrote in it.
    static func requeue(_ db: SQLiteConnection, _ key: ConversationKey, now: Int64) throws {
        try db.statement("""
            UPDATE conversations SET queued_at = ?3
            WHERE service = ?1 AND client_id = ?2 AND queued_at IS NULL
              AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id AND m.sender_id = ?2 AND m.internal = 0)
            """).bind(.text(key.service), .text(key.clientId), .int(now)).run()
    }

    public func setStatus(_ key: ConversationKey, _ status: String, by: String, now: Int64,
                          completion: @escaping StoreCompletion<StatusChange>) {
        write({ db in
            guard let conversation = try Self.conversation(db, key, create: true, sender: "")?.id else {
                throw StoreError.internalError("conversation not created")
            }
            let s = try db.statement("""
                UPDATE conversations SET status = ?2, status_by = ?3, status_at = ?4 WHERE id = ?1 AND status != ?2
                RETURNING status
                """)
            try s.bind(.int(conversation), .text(status), .text(by), .int(now))
            let changed = try s.step()
            try s.run()
            let now = try Self.status(db, key)
            return StatusChange(status: now.status, changed: changed)
        }, completion)
    }

    public func deskState(_ key: ConversationKey, completion: @escaping StoreCompletion<(status: ConversationStatus, unassigned: Bool)>) {
        read({ db in try Self.status(db, key) }, completion)
    }

    private static func status(_ db: SQLiteConnection, _ key: ConversationKey) throws -> (status: ConversationStatus, unassigned: Bool) {
        let s = try db.statement("SELECT status, status_by, status_at, queued_at IS NOT NULL FROM conversations WHERE service = ?1 AND client_id = ?2")
        try s.bind(.text(key.service), .text(key.clientId))
        guard try s.step() else { return (ConversationStatus(conversation: key), false) }
        let out = (ConversationStatus(conversation: key, status: s.text(0), by: s.optionalText(1), at: s.optionalInt(2)), s.int(3) != 0)
        try s.run()
        return out
    }

    public func claimAssignment(_ a: Assignment, now: Int64, completion: @escaping StoreCompletion<String>) {
        write({ db in
            // One writer: the first claim inserts, every later one finds the row.
            try db.statement("""
                INSERT INTO assignments (service, client_id, agent_id, created_at) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT (service, client_id) DO NOTHING
                """).bind(.text(a.conversation.service), .text(a.conversation.clientId), .text(a.agentId), .int(now)).run()
            let s = try db.statement("SELECT agent_id FROM assignments WHERE service = ?1 AND client_id = ?2")
            try s.bind(.text(a.conversation.service), .text(a.conversation.clientId))
            guard try s.step() else { throw StoreError.internalError("claimed assignment missing") }
            let holder = s.text(0)
            try s.run()
            if holder == a.agentId { try Self.dequeue(db, a.conversation) }
            return holder
        }, completion)
    }

    public func queuedConversations(services: [String], limit: Int, completion: @escaping StoreCompletion<[ConversationKey]>) {
        read({ db in
            guard !services.isEmpty else { return [] }
            let list = (0..<services.count).map { "?\($0 + 2)" }.joined(separator: ", ")
            let s = try db.statement("""
                SELECT service, client_id FROM conversations
                WHERE queued_at IS NOT NULL AND status != 'resolved' AND service IN (\(list))
                ORDER BY queued_at, id LIMIT ?1
                """)
            try s.bind([.int(Int64(limit))] + services.map { .text($0) })
            var out: [ConversationKey] = []
            while try s.step() { out.append(ConversationKey(service: s.text(0), clientId: s.text(1))) }
            return out
        }, completion)
    }
}
