import Core
import Protocol

// The support desk on SQLite: a conversation's status, the queue of conversations whose client
// wrote with no agent to serve them, claims, and the events reports are made of
// (docs/protocol.md "Support desk").

/// A conversation's row as a send reads it, in the send's transaction: what the message's seq,
/// the sender's read mark and the desk need, in one lookup.
struct ConversationRow {
    let id: Int64
    /// The last message is someone else's.
    let followsOthers: Bool
    /// Created by this send.
    let created: Bool
    let lastSeq: Int64
    let resolved: Bool
    /// No cycle open: the client's message opens one.
    let cycleUnopened: Bool
    /// Not in the queue (never was, or taken out of it).
    let unqueued: Bool
}

extension ConversationRow {
    /// From `SELECT id, followsOthers, last_seq, resolved, cycleUnopened, unqueued`.
    init(_ s: SQLiteStatement, created: Bool) {
        self.init(id: s.int(0), followsOthers: s.int(1) != 0, created: created, lastSeq: s.int(2),
                  resolved: s.int(3) != 0, cycleUnopened: s.int(4) != 0, unqueued: s.int(5) != 0)
    }
}

/// What a client's message changed at the desk.
struct DeskChange {
    var reopened: ConversationStatus? = nil
    var queued = false
}

extension SQLiteStore {
    /// A client's message, in its append's transaction: reopens a resolved conversation, opens
    /// a cycle if none is open, and queues a conversation that no agent serves.
    static func clientWrote(_ db: SQLiteConnection, _ row: ConversationRow, _ m: StoredMessage, webhooks: WebhookOutbox) throws -> DeskChange {
        let conversation = row.id, reopen = row.resolved, opens = row.cycleUnopened
        // Who serves it matters only to a conversation not queued yet: an open, queued one
        // (the steady state of a waiting client) costs its messages no lookup.
        var agent: String?
        if opens || row.unqueued {
            let find = try db.statement("SELECT agent_id FROM assignments WHERE service = ?1 AND client_id = ?2")
            try find.bind(.text(m.conversation.service), .text(m.conversation.clientId))
            agent = try find.step() ? find.text(0) : nil
            try find.run()
        }
        let queue = agent == nil && row.unqueued
        guard reopen || opens || queue else { return DeskChange() }
        try db.statement("""
            UPDATE conversations SET
                status = CASE WHEN ?4 THEN 'open' ELSE status END,
                status_by = CASE WHEN ?4 THEN ?2 ELSE status_by END,
                status_at = CASE WHEN ?4 THEN ?3 ELSE status_at END,
                cycle_opened_at = COALESCE(cycle_opened_at, ?3),
                queued_at = CASE WHEN ?5 THEN ?3 ELSE queued_at END
            WHERE id = ?1
            """).bind(.int(conversation), .text(m.senderId), .int(m.ts), .int(reopen ? 1 : 0), .int(queue ? 1 : 0)).run()
        if opens { try event(db, m.conversation, "opened", agent: agent, seq: m.seq, ts: m.ts) }
        let status = reopen ? ConversationStatus(conversation: m.conversation, status: "open", by: m.senderId, at: m.ts) : nil
        if let status { _ = try webhooks.enqueue(db, .conversationStatus, orderingKey: m.conversation.channel, now: m.ts) { $0.statusFields(status) } }
        if queue {
            try event(db, m.conversation, "queued", agent: nil, ts: m.ts)
            _ = try webhooks.enqueue(db, .conversationQueued, orderingKey: m.conversation.channel, now: m.ts) {
                $0.queuedEventFields(m.conversation, lastMessage: m, ts: m.ts)
            }
        }
        return DeskChange(reopened: status, queued: queue)
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

    /// An agent serves it now (`agent`), or it was resolved (nil): out of the queue.
    static func dequeue(_ db: SQLiteConnection, _ key: ConversationKey, agent: String?, now: Int64) throws {
        let s = try db.statement("""
            UPDATE conversations SET queued_at = NULL WHERE service = ?1 AND client_id = ?2 AND queued_at IS NOT NULL RETURNING id
            """)
        try s.bind(.text(key.service), .text(key.clientId))
        let left = try s.step()
        try s.run()
        if left { try event(db, key, "dequeued", agent: agent, ts: now) }
    }

    /// Its agent was removed: back in the queue if the client wrote in it and it is not resolved.
    static func requeue(_ db: SQLiteConnection, _ key: ConversationKey, now: Int64, webhooks: WebhookOutbox) throws {
        let s = try db.statement("""
            UPDATE conversations SET queued_at = ?3
            WHERE service = ?1 AND client_id = ?2 AND queued_at IS NULL AND status != 'resolved'
              AND EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id AND m.sender_id = ?2 AND m.internal = 0)
            RETURNING id
            """)
        try s.bind(.text(key.service), .text(key.clientId), .int(now))
        let queued = try s.step()
        try s.run()
        guard queued else { return }
        try event(db, key, "queued", agent: nil, ts: now)
        _ = try webhooks.enqueue(db, .conversationQueued, orderingKey: key.channel, now: now) {
            $0.queuedEventFields(key, lastMessage: nil, ts: now)
        }
    }

    static func event(_ db: SQLiteConnection, _ key: ConversationKey, _ kind: String, agent: String?, seq: Int64? = nil, ts: Int64) throws {
        try db.statement("INSERT INTO desk_events (service, client_id, kind, agent, seq, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .bind(.text(key.service), .text(key.clientId), .text(kind), .of(agent), seq.map { .int($0) } ?? .null, .int(ts)).run()
    }

    public func setStatus(_ key: ConversationKey, _ status: String, by: String, now: Int64,
                          completion: @escaping StoreCompletion<StatusChange>) {
        let webhooks = webhookOutbox
        write({ db in
            guard let conversation = try Self.conversation(db, key, create: true, sender: "")?.id else {
                throw StoreError.internalError("conversation not created")
            }
            let s = try db.statement("""
                UPDATE conversations SET status = ?2, status_by = ?3, status_at = ?4 WHERE id = ?1 AND status != ?2
                RETURNING cycle_opened_at, (SELECT agent_id FROM assignments a WHERE a.service = conversations.service
                                                                              AND a.client_id = conversations.client_id)
                """)
            try s.bind(.int(conversation), .text(status), .text(by), .int(now))
            let changed = try s.step()
            let cycleOpened = changed ? s.optionalInt(0) : nil, agent = changed ? s.optionalText(1) : nil
            try s.run()
            // Resolved: the open cycle ends (its resolution time is from its start), and the
            // conversation waits for nobody.
            if changed && status == "resolved" {
                if cycleOpened != nil {
                    try db.statement("UPDATE conversations SET cycle_opened_at = NULL WHERE id = ?1").bind(.int(conversation)).run()
                    try Self.event(db, key, "resolved", agent: agent, seq: nil, ts: now)
                }
                try Self.dequeue(db, key, agent: nil, now: now)
            }
            let current = try Self.status(db, key).status
            if changed { _ = try webhooks.enqueue(db, .conversationStatus, orderingKey: key.channel, now: now) { $0.statusFields(current) } }
            return StatusChange(status: current, changed: changed)
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
        let webhooks = webhookOutbox
        write({ db in
            // One writer: the first claim inserts, every later one finds the row.
            let claim = try db.statement("""
                INSERT INTO assignments (service, client_id, agent_id, created_at) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT (service, client_id) DO NOTHING RETURNING agent_id
                """)
            try claim.bind(.text(a.conversation.service), .text(a.conversation.clientId), .text(a.agentId), .int(now))
            let won = try claim.step()
            try claim.run()
            if won {
                _ = try webhooks.enqueue(db, .assignmentChanged, orderingKey: a.conversation.channel, now: now) {
                    $0.assignmentEventFields(a.conversation, agent: a.agentId, previous: nil)
                }
            }
            let s = try db.statement("SELECT agent_id FROM assignments WHERE service = ?1 AND client_id = ?2")
            try s.bind(.text(a.conversation.service), .text(a.conversation.clientId))
            guard try s.step() else { throw StoreError.internalError("claimed assignment missing") }
            let holder = s.text(0)
            try s.run()
            if holder == a.agentId { try Self.dequeue(db, a.conversation, agent: a.agentId, now: now) }
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

    public func supportEvents(from: Int64, to: Int64, service: String?, completion: @escaping StoreCompletion<SupportEvents>) {
        read({ db in
            var out = SupportEvents()
            // Each cycle opened in the range, with the first reply by an agent or admin after
            // its opening message (not a note), found by the (conversation, seq) index.
            let opened = try db.statement("""
                SELECT e.service, e.client_id, e.agent, e.ts, r.ts - e.ts, r.sender_id
                FROM desk_events e
                LEFT JOIN conversations c ON c.service = e.service AND c.client_id = e.client_id
                LEFT JOIN messages r ON r.id = (
                    SELECT m.id FROM messages m WHERE m.conversation_id = c.id AND m.seq > e.seq AND m.internal = 0
                      AND m.sender_role IN ('admin', 'website_agent', 'marketing_agent') ORDER BY m.seq LIMIT 1)
                WHERE e.kind = 'opened' AND e.ts >= ?1 AND e.ts < ?2 AND (?3 IS NULL OR e.service = ?3)
                ORDER BY e.ts, e.id
                """)
            try opened.bind(.int(from), .int(to), .of(service))
            while try opened.step() {
                let key = ConversationKey(service: opened.text(0), clientId: opened.text(1))
                out.opened.append(.init(conversation: key, agent: opened.optionalText(2), ts: opened.int(3),
                                        firstResponseMs: opened.optionalInt(4), responder: opened.optionalText(5)))
            }
            // Each cycle resolved in the range, timed from the latest opening before it.
            let resolved = try db.statement("""
                SELECT e.service, e.client_id, e.agent, e.ts,
                       e.ts - (SELECT MAX(o.ts) FROM desk_events o WHERE o.service = e.service AND o.client_id = e.client_id
                                 AND o.kind = 'opened' AND o.ts <= e.ts)
                FROM desk_events e
                WHERE e.kind = 'resolved' AND e.ts >= ?1 AND e.ts < ?2 AND (?3 IS NULL OR e.service = ?3)
                ORDER BY e.ts, e.id
                """)
            try resolved.bind(.int(from), .int(to), .of(service))
            while try resolved.step() {
                let key = ConversationKey(service: resolved.text(0), clientId: resolved.text(1))
                out.resolved.append(.init(conversation: key, agent: resolved.optionalText(2), ts: resolved.int(3),
                                          resolutionMs: resolved.optionalInt(4)))
            }
            let start = try db.statement("""
                SELECT COALESCE(SUM(CASE kind WHEN 'queued' THEN 1 ELSE -1 END), 0) FROM desk_events
                WHERE kind IN ('queued', 'dequeued') AND ts < ?1 AND (?2 IS NULL OR service = ?2)
                """)
            try start.bind(.int(from), .of(service))
            out.queuedAtStart = try start.step() ? max(0, Int(start.int(0))) : 0
            try start.run()
            let changes = try db.statement("""
                SELECT ts, kind FROM desk_events
                WHERE kind IN ('queued', 'dequeued') AND ts >= ?1 AND ts < ?2 AND (?3 IS NULL OR service = ?3)
                ORDER BY ts, id
                """)
            try changes.bind(.int(from), .int(to), .of(service))
            while try changes.step() { out.queueChanges.append((changes.int(0), changes.text(1) == "queued" ? 1 : -1)) }
            return out
        }, completion)
    }
}
