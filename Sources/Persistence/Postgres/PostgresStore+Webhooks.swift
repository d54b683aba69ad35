import Protocol

// The webhook outbox on PostgreSQL (rules in WebhookStore.swift). Several nodes deliver from
// one outbox: a claim leases events with FOR UPDATE SKIP LOCKED, so two nodes claiming at once
// take disjoint events, and only the head of each ordering key is claimable, so a key's events
// go out one at a time whichever node holds them.
extension WebhookOutbox {
    /// Writes one event inside a writer's open transaction (`db` as a `write` body gets it),
    /// when the outbox is enabled; returns its id (nil when disabled). For events of a
    /// conversation, call it after the conversation's row is locked (as `hub_append` does), so
    /// the event's `seq` follows the conversation's commit order.
    @discardableResult
    func enqueue(_ db: PGConnection, _ type: WebhookEventType, orderingKey: String, now: Int64,
                 data: (inout JSONWriter) -> Void) throws -> String? {
        guard enabled else { return nil }
        return try PostgresStore.insertWebhook(db, type, orderingKey: orderingKey, now: now, data: data)
    }
}

extension PostgresStore: WebhookStore {
    static func insertWebhook(_ db: PGConnection, _ type: WebhookEventType, orderingKey: String, now: Int64,
                              data: (inout JSONWriter) -> Void) throws -> String {
        let id = WebhookOutbox.newEventID()
        // The body is JSON: a U+0000 in any text is written as \u0000, so it stores as it is.
        _ = try db.query("""
            INSERT INTO webhook_events (event_id, type, ordering_key, body, created_at, next_attempt_at)
            VALUES ($1, $2, $3, $4, $5::bigint, $5::bigint)
            """, [id, type.rawValue, orderingKey, WebhookOutbox.body(id: id, type: type, ts: now, data: data), String(now)])
        return id
    }

    public func enqueueWebhook(_ type: WebhookEventType, orderingKey: String, now: Int64,
                               data: @escaping @Sendable (inout JSONWriter) -> Void, completion: @escaping StoreCompletion<String>) {
        write(lockKey: orderingKey.isEmpty ? nil : orderingKey, { db in
            try Self.insertWebhook(db, type, orderingKey: orderingKey, now: now, data: data)
        }, completion: completion)
    }

    public func claimDueWebhooks(node: String, now: Int64, leaseMs: Int64, limit: Int,
                                 completion: @escaping StoreCompletion<[WebhookEvent]>) {
        write({ db in
            let r = try db.query("""
                UPDATE webhook_events SET lease_node = $3, lease_until = $1::bigint + $4::bigint
                WHERE seq IN (
                    SELECT e.seq FROM webhook_events e
                    WHERE e.delivered_at IS NULL AND e.given_up_at IS NULL AND e.next_attempt_at <= $1::bigint
                      AND (e.lease_until IS NULL OR e.lease_until <= $1::bigint OR e.lease_node = $3)
                      AND (e.ordering_key = '' OR NOT EXISTS (
                          SELECT 1 FROM webhook_events o
                          WHERE o.ordering_key = e.ordering_key AND o.seq < e.seq
                            AND o.delivered_at IS NULL AND o.given_up_at IS NULL))
                    ORDER BY e.seq LIMIT $2::bigint FOR UPDATE SKIP LOCKED)
                RETURNING seq, event_id, type, ordering_key, body, created_at, attempts
                """, [String(now), String(limit), node, String(leaseMs)])
            return (0..<r.count).map {
                WebhookEvent(seq: r.int($0, 0), eventId: r.text($0, 1), type: r.text($0, 2), orderingKey: r.text($0, 3),
                             body: r.text($0, 4), createdAt: r.int($0, 5), attempts: Int(r.int($0, 6)))
            }.sorted { $0.seq < $1.seq }
        }, completion: completion)
    }

    public func finishWebhook(_ event: WebhookEvent, _ outcome: WebhookOutcome, node: String, now: Int64, durationMs: Int64,
                              completion: @escaping StoreCompletion<Void>) {
        write({ db in
            let (status, error) = outcome.answer
            _ = try db.query("""
                INSERT INTO webhook_attempts (event_id, type, attempt, ts, status, error, duration_ms)
                VALUES ($1, $2, $3::integer, $4::bigint, $5::integer, $6, $7::bigint)
                """, [event.eventId, event.type, String(event.attempts + 1), String(now), status.map { String($0) }, error,
                      String(durationMs)])
            let set: String
            var values: [String?] = [String(event.seq), node]
            switch outcome {
            case .delivered:
                set = "delivered_at = $3::bigint, last_error = NULL"
                values.append(String(now))
            case .retry(_, _, let at):
                set = "next_attempt_at = $3::bigint, last_error = $4"
                values += [String(at), outcome.errorText]
            case .givenUp:
                set = "given_up_at = $3::bigint, last_error = $4"
                values += [String(now), outcome.errorText]
            }
            _ = try db.query("""
                UPDATE webhook_events SET \(set), attempts = attempts + 1, lease_node = NULL, lease_until = NULL
                WHERE seq = $1::bigint AND lease_node = $2 AND delivered_at IS NULL AND given_up_at IS NULL
                """, values)
            _ = try db.query("DELETE FROM webhook_attempts WHERE id <= (SELECT MAX(id) FROM webhook_attempts) - $1::bigint",
                             [String(WebhookOutbox.keptAttempts)])
        }, completion: completion)
    }

    public func webhookDeliveries(limit: Int, completion: @escaping StoreCompletion<[WebhookDelivery]>) {
        read({ db in
            let r = try db.query("""
                SELECT a.event_id, a.type, a.attempt, a.ts, a.status, a.error, a.duration_ms,
                       CASE WHEN e.seq IS NULL OR e.delivered_at IS NOT NULL THEN 'delivered'
                            WHEN e.given_up_at IS NOT NULL THEN 'given_up' ELSE 'pending' END
                FROM webhook_attempts a LEFT JOIN webhook_events e ON e.event_id = a.event_id
                ORDER BY a.id DESC LIMIT $1::bigint
                """, [String(limit)])
            return (0..<r.count).map {
                WebhookDelivery(eventId: r.text($0, 0), type: r.text($0, 1), attempt: Int(r.int($0, 2)), ts: r.int($0, 3),
                                status: r.optionalInt($0, 4).map { Int($0) }, error: r.optionalText($0, 5),
                                durationMs: r.int($0, 6), state: WebhookDelivery.State(rawValue: r.text($0, 7)) ?? .pending)
            }
        }, completion: completion)
    }

    public func pendingWebhookCount(completion: @escaping StoreCompletion<Int>) {
        read({ db in
            let r = try db.query("SELECT COUNT(*) FROM webhook_events WHERE delivered_at IS NULL AND given_up_at IS NULL")
            return r.count == 1 ? Int(r.int(0, 0)) : 0
        }, completion: completion)
    }

    public func pruneWebhooks(finishedBefore: Int64) {
        writeAndForget { db in
            _ = try db.query("""
                DELETE FROM webhook_events WHERE (delivered_at IS NOT NULL OR given_up_at IS NOT NULL)
                  AND COALESCE(delivered_at, given_up_at) < $1::bigint
                """, [String(finishedBefore)])
        }
    }
}
