import Foundation
import Protocol

// The support desk on PostgreSQL (the rules are SQLiteStore+Desk's): status, the queue, claims.
extension PostgresStore {
    /// A client's message, in its append's transaction (the conversation row is locked by
    /// hub_append): reopens a resolved conversation and queues one that no agent serves.
    static func clientWrote(_ db: PGConnection, conversation: Int64, _ m: NewMessage) throws -> DeskChange {
        let r = try db.query("""
            WITH old AS (
                SELECT c.status = 'resolved' AS reopen,
                       c.queued_at IS NULL AND NOT EXISTS (
                           SELECT 1 FROM assignments a WHERE a.service = c.service AND a.client_id = c.client_id) AS queue
                FROM conversations c WHERE c.id = $1::bigint)
            UPDATE conversations c SET
                status = CASE WHEN old.reopen THEN 'open' ELSE c.status END,
                status_by = CASE WHEN old.reopen THEN $2 ELSE c.status_by END,
                status_at = CASE WHEN old.reopen THEN $3::bigint ELSE c.status_at END,
                queued_at = CASE WHEN old.queue THEN $3::bigint ELSE c.queued_at END
            FROM old WHERE c.id = $1::bigint AND (old.reopen OR old.queue)
            RETURNING old.reopen, old.queue
            """, ["\(conversation)", m.sender.id, "\(m.ts)"])
        guard r.count == 1 else { return DeskChange() }
        let reopen = r.bool(0, 0), queue = r.bool(0, 1)
        return DeskChange(reopened: reopen ? ConversationStatus(conversation: m.conversation, status: "open", by: m.sender.id, at: m.ts) : nil,
                          queued: queue)
    }

    /// Every user of `roles` (the users told of a newly queued conversation).
    static func users(_ db: PGConnection, roles: [String]) throws -> [String] {
        guard !roles.isEmpty else { return [] }
        let r = try db.query("SELECT id FROM users WHERE role = ANY($1::text[]) ORDER BY id", [PGConnection.textArray(roles)])
        return (0..<r.count).map { r.text($0, 0) }
    }

    /// An agent serves it now: out of the queue.
    static func dequeue(_ db: PGConnection, _ key: ConversationKey) throws {
        _ = try db.query("UPDATE conversations SET queued_at = NULL WHERE service = $1 AND client_id = $2 AND queued_at IS NOT NULL",
                         [key.service, key.clientId])
    }

    /// Its agent was removed: back in the queue if the client ever wrote in it.
    static func requeue(_ db: PGConnection, _ key: ConversationKey, now: Int64) throws {
        _ = try db.query("""
            UPDATE conversations c SET queued_at = $3::bigint
            WHERE service = $1 AND client_id = $2 AND queued_at IS NULL
              AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.sender_id = $2 AND NOT m.internal)
            """, [key.service, key.clientId, "\(now)"])
    }

    public func setStatus(_ key: ConversationKey, _ status: String, by: String, now: Int64,
                          completion: @escaping StoreCompletion<StatusChange>) {
        write(lockKey: key.channel, { db in
            _ = try db.query("INSERT INTO conversations (service, client_id) VALUES ($1, $2) ON CONFLICT (service, client_id) DO NOTHING",
                             [key.service, key.clientId])
            let changed = try db.query("""
                UPDATE conversations SET status = $3, status_by = $4, status_at = $5::bigint
                WHERE service = $1 AND client_id = $2 AND status <> $3 RETURNING id
                """, [key.service, key.clientId, status, by, "\(now)"]).count > 0
            return StatusChange(status: try Self.status(db, key).status, changed: changed)
        }, completion: completion)
    }

    public func deskState(_ key: ConversationKey, completion: @escaping StoreCompletion<(status: ConversationStatus, unassigned: Bool)>) {
        read({ db in try Self.status(db, key) }, completion: completion)
    }

    private static func status(_ db: PGConnection, _ key: ConversationKey) throws -> (status: ConversationStatus, unassigned: Bool) {
        let r = try db.query("SELECT status, status_by, status_at, queued_at IS NOT NULL FROM conversations WHERE service = $1 AND client_id = $2",
                             [key.service, key.clientId])
        guard r.count > 0 else { return (ConversationStatus(conversation: key), false) }
        return (ConversationStatus(conversation: key, status: r.text(0, 0), by: r.optionalText(0, 1), at: r.optionalInt(0, 2)), r.bool(0, 3))
    }

    public func claimAssignment(_ a: Assignment, now: Int64, completion: @escaping StoreCompletion<String>) {
        let key = a.conversation
        write(lockKey: key.channel, { db in
            // Two nodes claiming at once: the primary key lets one insert; the other's insert
            // waits for it, does nothing, and reads the winner.
            _ = try db.query("""
                INSERT INTO assignments (service, client_id, agent_id, created_at) VALUES ($1, $2, $3, $4::bigint)
                ON CONFLICT (service, client_id) DO NOTHING
                """, [key.service, key.clientId, a.agentId, "\(now)"])
            let r = try db.query("SELECT agent_id FROM assignments WHERE service = $1 AND client_id = $2", [key.service, key.clientId])
            guard r.count > 0 else { throw StoreError.internalError("claimed assignment missing") }
            let holder = r.text(0, 0)
            if holder == a.agentId { try Self.dequeue(db, key) }
            return holder
        }, completion: completion)
    }

    public func queuedConversations(services: [String], limit: Int, completion: @escaping StoreCompletion<[ConversationKey]>) {
        read({ db in
            guard !services.isEmpty else { return [] }
            let r = try db.query("""
                SELECT service, client_id FROM conversations
                WHERE queued_at IS NOT NULL AND status <> 'resolved' AND service = ANY($1::text[])
                ORDER BY queued_at, id LIMIT $2::bigint
                """, [PGConnection.textArray(services), "\(limit)"])
            return (0..<r.count).map { ConversationKey(service: r.text($0, 0), clientId: r.text($0, 1)) }
        }, completion: completion)
    }
}
