import Protocol

// The webhook outbox on SQLite (rules in WebhookStore.swift). A SQLite file is one process's,
// with one deliverer thread that claims only after finishing its previous batch: every
// unfinished event is its own, so a claim takes no lease and is a read on a reader thread
// (a backlog of events, a receiver down for hours, never holds the writer that messages need),
// and a hub killed mid-attempt and restarted under another node id sends again at once.
extension WebhookOutbox {
    /// Writes one event inside the writer's open transaction (`db` as a `write` body gets it),
    /// when the outbox is enabled; returns its id (nil when disabled). The change and its event
    /// commit or roll back together.
    @discardableResult
    public func enqueue(_ db: SQLiteConnection, _ type: WebhookEventType, orderingKey: String, now: Int64,
                        data: (inout JSONWriter) -> Void) throws -> String? {
        guard enabled else { return nil }
        return try SQLiteStore.insertWebhook(db, type, orderingKey: orderingKey, now: now, data: data)
    }
}

extension SQLiteStore: WebhookStore {
    static func insertWebhook(_ db: SQLiteConnection, _ type: WebhookEventType, orderingKey: String, now: Int64,
                              data: (inout JSONWriter) -> Void) throws -> String {
        let id = WebhookOutbox.newEventID()
        try db.statement("""
            INSERT INTO webhook_events (event_id, type, ordering_key, body, created_at, next_attempt_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?5)
            """).bind(.text(id), .text(type.rawValue), .text(orderingKey),
                      .text(WebhookOutbox.body(id: id, type: type, ts: now, data: data)), .int(now)).run()
        return id
    }

    public func enqueueWebhook(_ type: WebhookEventType, orderingKey: String, now: Int64,
                               data: @escaping @Sendable (inout JSONWriter) -> Void, completion: @escaping StoreCompletion<String>) {
        write({ db in try Self.insertWebhook(db, type, orderingKey: orderingKey, now: now, data: data) }, completion)
    }

    public func claimDueWebhooks(node: String, now: Int64, leaseMs: Int64, limit: Int,
                                 completion: @escaping StoreCompletion<[WebhookEvent]>) {
        read({ db in
            // The head of each ordering key only: an older unfinished event of the same key
            // (waiting for its retry, or in flight) holds the ones behind it.
            let s = try db.statement("""
                SELECT e.seq, e.event_id, e.type, e.ordering_key, e.body, e.created_at, e.attempts
                FROM webhook_events e
                WHERE e.delivered_at IS NULL AND e.given_up_at IS NULL AND e.next_attempt_at <= ?1
                  AND (e.ordering_key = '' OR NOT EXISTS (
                      SELECT 1 FROM webhook_events o
                      WHERE o.ordering_key = e.ordering_key AND o.seq < e.seq
                        AND o.delivered_at IS NULL AND o.given_up_at IS NULL))
                ORDER BY e.seq LIMIT ?2
                """)
            try s.bind(.int(now), .int(Int64(limit)))
            var out: [WebhookEvent] = []
            while try s.step() {
                out.append(WebhookEvent(seq: s.int(0), eventId: s.text(1), type: s.text(2), orderingKey: s.text(3),
                                        body: s.text(4), createdAt: s.int(5), attempts: Int(s.int(6))))
            }
            return out
        }, completion)
    }

    public func finishWebhook(_ event: WebhookEvent, _ outcome: WebhookOutcome, node: String, now: Int64, durationMs: Int64,
                              completion: @escaping StoreCompletion<Void>) {
        write({ db in
            let (status, error) = outcome.answer
            try db.statement("""
                INSERT INTO webhook_attempts (event_id, type, attempt, ts, status, error, duration_ms)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                """).bind(.text(event.eventId), .text(event.type), .int(Int64(event.attempts + 1)), .int(now),
                          .of(status.map(Int64.init)), .of(error), .int(durationMs)).run()
            let set: String
            var values: [SQLiteValue] = [.int(event.seq), .text(node)]
            switch outcome {
            case .delivered:
                set = "delivered_at = ?3, last_error = NULL"
                values.append(.int(now))
            case .retry(_, _, let at):
                set = "next_attempt_at = ?3, last_error = ?4"
                values += [.int(at), .of(outcome.errorText)]
            case .givenUp:
                set = "given_up_at = ?3, last_error = ?4"
                values += [.int(now), .of(outcome.errorText)]
            }
            try db.statement("""
                UPDATE webhook_events SET \(set), attempts = attempts + 1, lease_node = NULL, lease_until = NULL
                WHERE seq = ?1 AND delivered_at IS NULL AND given_up_at IS NULL AND (lease_node IS NULL OR lease_node = ?2)
                """).bind(values).run()
            try db.statement("DELETE FROM webhook_attempts WHERE id <= (SELECT MAX(id) FROM webhook_attempts) - ?1")
                .bind(.int(WebhookOutbox.keptAttempts)).run()
        }, completion)
    }

    public func webhookDeliveries(limit: Int, completion: @escaping StoreCompletion<[WebhookDelivery]>) {
        read({ db in
            let s = try db.statement("""
                SELECT a.event_id, a.type, a.attempt, a.ts, a.status, a.error, a.duration_ms,
                       CASE WHEN e.seq IS NULL OR e.delivered_at IS NOT NULL THEN 'delivered'
                            WHEN e.given_up_at IS NOT NULL THEN 'given_up' ELSE 'pending' END
                FROM webhook_attempts a LEFT JOIN webhook_events e ON e.event_id = a.event_id
                ORDER BY a.id DESC LIMIT ?1
                """)
            try s.bind(.int(Int64(limit)))
            var out: [WebhookDelivery] = []
            while try s.step() {
                out.append(WebhookDelivery(eventId: s.text(0), type: s.text(1), attempt: Int(s.int(2)), ts: s.int(3),
                                           status: s.optionalInt(4).map { Int($0) }, error: s.optionalText(5),
                                           durationMs: s.int(6), state: WebhookDelivery.State(rawValue: s.text(7)) ?? .pending))
            }
            return out
        }, completion)
    }

    public func pendingWebhookCount(completion: @escaping StoreCompletion<Int>) {
        read({ db in
            let s = try db.statement("SELECT COUNT(*) FROM webhook_events WHERE delivered_at IS NULL AND given_up_at IS NULL")
            return try s.step() ? Int(s.int(0)) : 0
        }, completion)
    }

    public func pruneWebhooks(finishedBefore: Int64) {
        write(background: true, { db in
            try db.statement("""
                DELETE FROM webhook_events WHERE (delivered_at IS NOT NULL OR given_up_at IS NOT NULL)
                  AND COALESCE(delivered_at, given_up_at) < ?1
                """).bind(.int(finishedBefore)).run()
        }, { _ in })
    }
}

extension WebhookOutcome {
    /// The HTTP status and the error of the attempt.
    var answer: (status: Int?, error: String?) {
        switch self {
        case .delivered(let status): return (status, nil)
        case .retry(let status, let error, _), .givenUp(let status, let error): return (status, error)
        }
    }

    /// What `last_error` keeps: the error, or the status that was not 2xx.
    var errorText: String? {
        let (status, error) = answer
        return error ?? status.map { "HTTP \($0)" }
    }
}
