// The schema, as numbered migrations. Each runs once, in its own transaction, and is recorded
// in `schema_migrations`; a database from a newer hub (a number we do not know) is refused
// with a clear message instead of being used half-understood.
enum Migrations {
    /// (version, SQL). Append only: never edit a migration that has shipped.
    static let all: [(Int, String)] = [
        (1, """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            role TEXT NOT NULL,
            name TEXT NOT NULL,
            email TEXT,
            services TEXT,              -- comma-separated; NULL means all services
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        );
        CREATE TABLE assignments (
            service TEXT NOT NULL,
            client_id TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (service, client_id)
        );
        CREATE INDEX assignments_by_agent ON assignments(agent_id);
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            service TEXT NOT NULL,
            client_id TEXT NOT NULL,
            last_seq INTEGER NOT NULL DEFAULT 0,
            last_ts INTEGER,
            UNIQUE (service, client_id)
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id),
            seq INTEGER NOT NULL,
            sender_id TEXT NOT NULL,
            sender_role TEXT NOT NULL,
            sender_name TEXT NOT NULL,
            text TEXT NOT NULL,
            ts INTEGER NOT NULL,
            client_msg_id TEXT,
            UNIQUE (conversation_id, seq)
        );
        CREATE UNIQUE INDEX messages_by_client_msg_id ON messages(sender_id, client_msg_id)
            WHERE client_msg_id IS NOT NULL;
        CREATE TABLE read_marks (
            user_id TEXT NOT NULL,
            conversation_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (user_id, conversation_id)
        ) WITHOUT ROWID;
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            actor_id TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            ts INTEGER NOT NULL
        );
        """),
        (2, """
        ALTER TABLE users ADD COLUMN last_seen_at INTEGER;   -- last connect or disconnect (fallback mail)
        ALTER TABLE users ADD COLUMN email_bounced TEXT;     -- the address that last failed permanently
        CREATE INDEX users_by_role ON users(role);
        -- Notifications. A row with user_id is one user's; a row without is a broadcast, stored
        -- once for its audience ('all' or a role), with per-user state in broadcast_state.
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            user_id TEXT,
            audience TEXT,
            service TEXT NOT NULL,
            category TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            data TEXT NOT NULL,         -- a JSON object, as posted
            ts INTEGER NOT NULL,
            read_at INTEGER,
            pushed_at INTEGER,
            conversation TEXT,          -- message notifications: one per user and conversation
            conversation_seq INTEGER,
            conversation_count INTEGER
        );
        CREATE INDEX notifications_by_user ON notifications(user_id, id) WHERE user_id IS NOT NULL;
        CREATE INDEX notifications_unread ON notifications(user_id, service) WHERE user_id IS NOT NULL AND read_at IS NULL;
        CREATE UNIQUE INDEX notifications_by_conversation ON notifications(user_id, conversation) WHERE conversation IS NOT NULL;
        CREATE INDEX broadcasts_by_audience ON notifications(audience, id) WHERE user_id IS NULL;
        CREATE TABLE broadcast_state (
            notification_id INTEGER NOT NULL,
            user_id TEXT NOT NULL,
            read_at INTEGER,
            pushed_at INTEGER,
            PRIMARY KEY (notification_id, user_id)
        ) WITHOUT ROWID;
        CREATE INDEX broadcast_state_by_user ON broadcast_state(user_id, notification_id);
        -- A role or everyone fan-out in progress: resumed after a restart from its cursor.
        CREATE TABLE fanouts (
            id INTEGER PRIMARY KEY,
            audience TEXT NOT NULL,         -- 'all' or a role
            service TEXT NOT NULL,
            category TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            data TEXT NOT NULL,
            email TEXT,
            last_user_rowid INTEGER NOT NULL,
            cursor INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            finished_at INTEGER
        );
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            notification_id INTEGER NOT NULL,
            user_id TEXT NOT NULL,
            mode TEXT NOT NULL,             -- 'now' or 'fallback'
            status TEXT NOT NULL,           -- 'pending', 'sent', 'failed', 'skipped'
            due_at INTEGER NOT NULL,        -- next attempt (fallback: after the delay)
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at INTEGER NOT NULL,
            finished_at INTEGER
        );
        CREATE INDEX outbox_pending ON outbox(due_at) WHERE status = 'pending';
        CREATE INDEX outbox_by_notification ON outbox(notification_id);
        CREATE TABLE idempotency (
            key TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            status INTEGER NOT NULL,
            body TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE INDEX idempotency_by_age ON idempotency(created_at);
        CREATE INDEX messages_by_ts ON messages(ts);     -- per-day stats
        CREATE INDEX notifications_by_ts ON notifications(ts);
        """),
        (3, """
        -- Row counts kept by triggers, so stats read one small table instead of counting.
        -- (An INSERT OR REPLACE into either table would not fire the delete trigger and the
        -- count would drift: the store never uses one there.)
        CREATE TABLE totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO totals VALUES ('messages', (SELECT COUNT(*) FROM messages)),
                                  ('notifications', (SELECT COUNT(*) FROM notifications));
        CREATE TRIGGER messages_total_insert AFTER INSERT ON messages
            BEGIN UPDATE totals SET value = value + 1 WHERE name = 'messages'; END;
        CREATE TRIGGER messages_total_delete AFTER DELETE ON messages
            BEGIN UPDATE totals SET value = value - 1 WHERE name = 'messages'; END;
        CREATE TRIGGER notifications_total_insert AFTER INSERT ON notifications
            BEGIN UPDATE totals SET value = value + 1 WHERE name = 'notifications'; END;
        CREATE TRIGGER notifications_total_delete AFTER DELETE ON notifications
            BEGIN UPDATE totals SET value = value - 1 WHERE name = 'notifications'; END;
        """),
        (4, """
        -- Who sent a conversation's last message: a send after someone else's moves the
        -- sender's read mark; a send after one's own needs no read-mark work at all.
        ALTER TABLE conversations ADD COLUMN last_sender TEXT;
        """),
        (5, """
        -- The store's epoch: a random name for this store's message streams. A client's `since`
        -- is a position in them; after a restore or a move to another store the epoch differs,
        -- and `subscribe` answers from the beginning (reset) instead of leaving a silent gap.
        -- One per store, not per conversation: a conversation with no row yet needs one too, and
        -- what invalidates positions (a restore, a replacement) happens to the whole store.
        CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        INSERT INTO store_meta VALUES ('epoch', lower(hex(randomblob(8))));
        """),
        (6, """
        -- The support desk. A conversation's status ('open', 'pending', 'resolved') with who set
        -- it and when; `queued_at`: since when the client has been waiting with no agent for
        -- the service (NULL: not in the queue). A message may be an internal note (agents and
        -- admins only).
        ALTER TABLE conversations ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
        ALTER TABLE conversations ADD COLUMN status_by TEXT;
        ALTER TABLE conversations ADD COLUMN status_at INTEGER;
        ALTER TABLE conversations ADD COLUMN queued_at INTEGER;
        CREATE INDEX conversations_queued ON conversations(queued_at) WHERE queued_at IS NOT NULL;
        ALTER TABLE messages ADD COLUMN internal INTEGER NOT NULL DEFAULT 0;
        """),
        (7, """
        -- The webhook outbox (WebhookStore.swift): one row per event, written in the
        -- transaction of the change it describes. `seq` is the write order; an event waits for
        -- the older unfinished events of its `ordering_key` ('' = none). A lease (node, until)
        -- keeps two deliverers from sending one event at once.
        CREATE TABLE webhook_events (
            seq INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            ordering_key TEXT NOT NULL,
            body TEXT NOT NULL,             -- the JSON body exactly as POSTed
            created_at INTEGER NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            lease_node TEXT,
            lease_until INTEGER,
            delivered_at INTEGER,
            given_up_at INTEGER,
            last_error TEXT
        );
        CREATE INDEX webhook_events_unfinished ON webhook_events(ordering_key, seq)
            WHERE delivered_at IS NULL AND given_up_at IS NULL;
        CREATE INDEX webhook_events_finished ON webhook_events(COALESCE(delivered_at, given_up_at))
            WHERE delivered_at IS NOT NULL OR given_up_at IS NOT NULL;
        -- Recent attempts, trimmed to the newest WebhookOutbox.keptAttempts.
        CREATE TABLE webhook_attempts (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL,
            type TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            ts INTEGER NOT NULL,
            status INTEGER,                 -- the HTTP status; NULL when there was no answer
            error TEXT,
            duration_ms INTEGER NOT NULL
        );
        """),
        (8, """
        -- Support reports read stored events, so they survive restarts: a conversation's cycles
        -- (opened by a client's message, at `seq`; resolved by a status) with the agent serving
        -- it then, and its entries to and exits from the queue. `cycle_opened_at`: when the
        -- conversation's open cycle began (NULL: none is open). Version 7 is the webhooks'.
        CREATE TABLE desk_events (
            id INTEGER PRIMARY KEY,
            service TEXT NOT NULL,
            client_id TEXT NOT NULL,
            kind TEXT NOT NULL,             -- 'opened', 'resolved', 'queued', 'dequeued'
            agent TEXT,
            seq INTEGER,
            ts INTEGER NOT NULL
        );
        CREATE INDEX desk_events_by_ts ON desk_events(ts);
        CREATE INDEX desk_events_by_conversation ON desk_events(service, client_id, ts);
        ALTER TABLE conversations ADD COLUMN cycle_opened_at INTEGER;
        """),
        (9, """
        -- Edit, delete and attachments (docs/protocol.md "Messages"). `attachments`: the JSON
        -- array as sent to clients, NULL for none. A deleted message keeps its row (its seq) with
        -- the text '' and `deleted_at` set. `message_edits` keeps each replaced text for
        -- moderation; a delete erases it with the message.
        ALTER TABLE messages ADD COLUMN attachments TEXT;
        ALTER TABLE messages ADD COLUMN edited_at INTEGER;
        ALTER TABLE messages ADD COLUMN deleted_at INTEGER;
        CREATE TABLE message_edits (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL,
            text TEXT NOT NULL,             -- the text before this edit
            edited_at INTEGER NOT NULL,
            editor TEXT NOT NULL
        );
        CREATE INDEX message_edits_by_message ON message_edits(message_id, id);
        """),
        (10, """
        -- Search (SQLiteStore+Search.swift): our own inverted index, written in the message's
        -- transaction, not FTS5, whose deleted tokens stay in its segments until a merge
        -- (docs/protocol.md "Search"). The stored messages are indexed by `afterSQL`.
        CREATE TABLE search_postings (
            term TEXT NOT NULL,
            message_id INTEGER NOT NULL,
            conversation_id INTEGER NOT NULL,
            PRIMARY KEY (term, message_id)
        ) WITHOUT ROWID;
        CREATE TABLE search_documents (
            message_id INTEGER PRIMARY KEY,
            conversation_id INTEGER NOT NULL,
            terms TEXT NOT NULL             -- the message's distinct terms, space-separated
        );
        """),
        (11, """
        -- Search's tail (SQLiteStore+Search.swift): a send writes only its search_documents row;
        -- the postings of documents past `merged_through` are written later, in batches sorted by
        -- term (SearchMerger). What version 10 indexed is merged already.
        CREATE TABLE search_merge (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            merged_through INTEGER NOT NULL     -- the newest message_id whose postings are written
        );
        INSERT INTO search_merge (id, merged_through) SELECT 1, COALESCE(MAX(message_id), 0) FROM search_documents;
        """),
        (12, """
        -- A delete makes the webhook events that quote its message tombstones: those of one
        -- conversation, delivered or not, found by this index instead of a scan of the 7 days
        -- of events the outbox keeps (webhook_events_unfinished covers pending ones only).
        CREATE INDEX webhook_events_by_key ON webhook_events(ordering_key, seq);
        """),
    ]

    /// Work a migration does after its SQL, in its transaction (what SQL alone cannot compute).
    static func afterSQL(_ version: Int, _ db: SQLiteConnection) throws {
        if version == 10 { try SQLiteStore.indexStoredMessages(db) }
    }

    struct NewerDatabase: Error, CustomStringConvertible {
        let found: Int
        let known: Int
        var description: String {
            "the database is at schema version \(found), newer than this hub knows (\(known)); run a newer hub or restore a backup"
        }
    }

    /// Brings the database up to the newest version; returns the version it is at.
    @discardableResult
    static func migrate(_ db: SQLiteConnection, now: Int64) throws -> Int {
        try db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")
        let s = try db.statement("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        let current = try s.step() ? Int(s.int(0)) : 0
        db.resetStatements()
        let newest = all.last?.0 ?? 0
        guard current <= newest else { throw NewerDatabase(found: current, known: newest) }
        for (version, sql) in all where version > current {
            try db.transaction {
                try db.execute(sql)
                try afterSQL(version, db)
                try db.statement("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)")
                    .bind(.int(Int64(version)), .int(now)).run()
            }
        }
        return newest
    }
}
