import Foundation
import Protocol

// The support desk on PostgreSQL (the rules are SQLiteStore+Desk's): status, the queue, claims.
extension PostgresStore {
    /// What hub_append did for a client's message (it reopens, opens a cycle and queues under
    /// the row lock it holds): the webhook events for it, in the same transaction.
    static func clientWrote(_ db: PGConnection, _ m: StoredMessage, reopened: Bool, queued: Bool,
                            webhooks: WebhookOutbox) throws -> DeskChange {
        let status = reopened ? ConversationStatus(conversation: m.conversation, status: "open", by: m.senderId, at: m.ts) : nil
        if let status { _ = try webhooks.enqueue(db, .conversationStatus, orderingKey: m.conversation.channel, now: m.ts) { $0.statusFields(status) } }
        if queued {
            _ = try webhooks.enqueue(db, .conversationQueued, orderingKey: m.conversation.channel, now: m.ts) {
                $0.queuedEventFields(m.conversation, lastMessage: m, ts: m.ts)
            }
        }
        return DeskChange(reopened: status, queued: queued)
    }

    /// With webhooks on, an assignment's event is numbered under the conversation's row lock
    /// (as a message's is), so a conversation's events leave in commit order across nodes.
    static func lockForWebhook(_ db: PGConnection, _ key: ConversationKey, _ webhooks: WebhookOutbox) throws {
        guard webhooks.enabled else { return }
        _ = try db.query("INSERT INTO conversations (service, client_id) VALUES ($1, $2) ON CONFLICT (service, client_id) DO NOTHING",
                         [key.service, key.clientId])
        _ = try db.query("SELECT id FROM conversations WHERE service = $1 AND client_id = $2 FOR UPDATE", [key.service, key.clientId])
    }

    /// Every user of `roles` (the users told of a newly queued conversation).
    static func users(_ db: PGConnection, roles: [String]) throws -> [String] {
        guard !roles.isEmpty else { return [] }
        let r = try db.query("SELECT id FROM users WHERE role = ANY($1::text[]) ORDER BY id", [PGConnection.textArray(roles)])
        return (0..<r.count).map { r.text($0, 0) }
    }

    /// An agent serves it now (`agent`), or it was resolved (nil): out of the queue.
    static func dequeue(_ db: PGConnection, _ key: ConversationKey, agent: String?, now: Int64) throws {
        _ = try db.query("""
            WITH left_queue AS (
                UPDATE conversations SET queued_at = NULL
                WHERE service = $1 AND client_id = $2 AND queued_at IS NOT NULL RETURNING id)
            INSERT INTO desk_events (service, client_id, kind, agent, ts)
            SELECT $1, $2, 'dequeued', $3, $4::bigint FROM left_queue
            """, [key.service, key.clientId, agent, "\(now)"])
    }

    /// Its agent was removed: back in the queue if the client wrote in it and it is not resolved.
    static func requeue(_ db: PGConnection, _ key: ConversationKey, now: Int64, webhooks: WebhookOutbox) throws {
        let r = try db.query("""
            WITH queued AS (
                UPDATE conversations c SET queued_at = $3::bigint
                WHERE service = $1 AND client_id = $2 AND queued_at IS NULL AND status <> 'resolved'
                  AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.sender_id = $2 AND NOT m.internal)
                RETURNING id)
            INSERT INTO desk_events (service, client_id, kind, ts) SELECT $1, $2, 'queued', $3::bigint FROM queued RETURNING id
            """, [key.service, key.clientId, "\(now)"])
        if r.count > 0 {
            _ = try webhooks.enqueue(db, .conversationQueued, orderingKey: key.channel, now: now) {
                $0.queuedEventFields(key, lastMessage: nil, ts: now)
            }
        }
    }

    public func setStatus(_ key: ConversationKey, _ status: String, by: String, now: Int64,
                          completion: @escaping StoreCompletion<StatusChange>) {
        let webhooks = webhookOutbox
        write(lockKey: key.channel, { db in
            _ = try db.query("INSERT INTO conversations (service, client_id) VALUES ($1, $2) ON CONFLICT (service, client_id) DO NOTHING",
                             [key.service, key.clientId])
            let r = try db.query("""
                UPDATE conversations c SET status = $3, status_by = $4, status_at = $5::bigint
                WHERE service = $1 AND client_id = $2 AND status <> $3
                RETURNING c.cycle_opened_at IS NOT NULL,
                          (SELECT agent_id FROM assignments a WHERE a.service = c.service AND a.client_id = c.client_id)
                """, [key.service, key.clientId, status, by, "\(now)"])
            let changed = r.count > 0
            // Resolved: the open cycle ends, and the conversation waits for nobody.
            if changed && status == "resolved" {
                if r.bool(0, 0) {
                    _ = try db.query("UPDATE conversations SET cycle_opened_at = NULL WHERE service = $1 AND client_id = $2",
                                     [key.service, key.clientId])
                    _ = try db.query("INSERT INTO desk_events (service, client_id, kind, agent, ts) VALUES ($1, $2, 'resolved', $3, $4::bigint)",
                                     [key.service, key.clientId, r.optionalText(0, 1), "\(now)"])
                }
                try Self.dequeue(db, key, agent: nil, now: now)
            }
            let current = try Self.status(db, key).status
            // After the UPDATE: the conversation's row is locked, so events are numbered in commit order.
            if changed { _ = try webhooks.enqueue(db, .conversationStatus, orderingKey: key.channel, now: now) { $0.statusFields(current) } }
            return StatusChange(status: current, changed: changed)
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
        let webhooks = webhookOutbox
        write(lockKey: key.channel, { db in
            // Two nodes claiming at once: the primary key lets one insert; the other's insert
            // waits for it, does nothing, and reads the winner.
            try Self.lockForWebhook(db, key, webhooks)
            let won = try db.query("""
                INSERT INTO assignments (service, client_id, agent_id, created_at) VALUES ($1, $2, $3, $4::bigint)
                ON CONFLICT (service, client_id) DO NOTHING RETURNING agent_id
                """, [key.service, key.clientId, a.agentId, "\(now)"]).count > 0
            if won {
                _ = try webhooks.enqueue(db, .assignmentChanged, orderingKey: key.channel, now: now) {
                    $0.assignmentEventFields(key, agent: a.agentId, previous: nil)
                }
            }
            let r = try db.query("SELECT agent_id FROM assignments WHERE service = $1 AND client_id = $2", [key.service, key.clientId])
            guard r.count > 0 else { throw StoreError.internalError("claimed assignment missing") }
            let holder = r.text(0, 0)
            if holder == a.agentId { try Self.dequeue(db, key, agent: a.agentId, now: now) }
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

    public func supportEvents(from: Int64, to: Int64, service: String?, completion: @escaping StoreCompletion<SupportEvents>) {
        read({ db in
            var out = SupportEvents()
            let params: [String?] = ["\(from)", "\(to)", service]
            let opened = try db.query("""
                SELECT e.service, e.client_id, e.agent, e.ts, r.ts - e.ts, r.sender_id
                FROM desk_events e
                LEFT JOIN conversations c ON c.service = e.service AND c.client_id = e.client_id
                LEFT JOIN LATERAL (
                    SELECT m.ts, m.sender_id FROM messages m WHERE m.conversation_id = c.id AND m.seq > e.seq AND NOT m.internal
                      AND m.sender_role IN ('admin', 'website_agent', 'marketing_agent') ORDER BY m.seq LIMIT 1) r ON true
                WHERE e.kind = 'opened' AND e.ts >= $1::bigint AND e.ts < $2::bigint AND ($3::text IS NULL OR e.service = $3)
                ORDER BY e.ts, e.id
                """, params)
            for i in 0..<opened.count {
                out.opened.append(.init(conversation: ConversationKey(service: opened.text(i, 0), clientId: opened.text(i, 1)),
                                        agent: opened.optionalText(i, 2), ts: opened.int(i, 3),
                                        firstResponseMs: opened.optionalInt(i, 4), responder: opened.optionalText(i, 5)))
            }
            let resolved = try db.query("""
                SELECT e.service, e.client_id, e.agent, e.ts,
                       e.ts - (SELECT MAX(o.ts) FROM desk_events o WHERE o.service = e.service AND o.client_id = e.client_id
                                 AND o.kind = 'opened' AND o.ts <= e.ts)
                FROM desk_events e
                WHERE e.kind = 'resolved' AND e.ts >= $1::bigint AND e.ts < $2::bigint AND ($3::text IS NULL OR e.service = $3)
                ORDER BY e.ts, e.id
                """, params)
            for i in 0..<resolved.count {
                out.resolved.append(.init(conversation: ConversationKey(service: resolved.text(i, 0), clientId: resolved.text(i, 1)),
                                          agent: resolved.optionalText(i, 2), ts: resolved.int(i, 3),
                                          resolutionMs: resolved.optionalInt(i, 4)))
            }
            let start = try db.query("""
                SELECT COALESCE(SUM(CASE kind WHEN 'queued' THEN 1 ELSE -1 END), 0) FROM desk_events
                WHERE kind IN ('queued', 'dequeued') AND ts < $1::bigint AND ($2::text IS NULL OR service = $2)
                """, ["\(from)", service])
            out.queuedAtStart = max(0, Int(start.int(0, 0)))
            let changes = try db.query("""
                SELECT ts, kind FROM desk_events
                WHERE kind IN ('queued', 'dequeued') AND ts >= $1::bigint AND ts < $2::bigint AND ($3::text IS NULL OR service = $3)
                ORDER BY ts, id
                """, params)
            for i in 0..<changes.count { out.queueChanges.append((changes.int(i, 0), changes.text(i, 1) == "queued" ? 1 : -1)) }
            return out
        }, completion: completion)
    }
}
