import Protocol

// The mail outbox and the Idempotency-Key answers on PostgreSQL. Several nodes share one
// outbox: a mailer takes mails with `claimDueMail` (a lease per mail, taken with FOR UPDATE
// SKIP LOCKED, so two nodes claiming at once get disjoint mails), and `finishMail` releases it.
extension PostgresStore {
    private static let mailColumns = """
        o.id, o.notification_id, o.user_id, o.mode, o.attempts, u.email, n.title, n.body, n.ts,
        n.read_at IS NOT NULL, u.last_seen_at, u.email_bounced, n.text_escaped
        """

    private static func mail(_ rows: PGRows, _ r: Int) -> OutboxMail {
        let escaped = rows.bool(r, 12)
        return OutboxMail(id: rows.int(r, 0), notificationId: rows.int(r, 1), userId: rows.text(r, 2),
                          mode: EmailMode(rawValue: rows.text(r, 3)) ?? .now, attempts: Int(rows.int(r, 4)),
                          address: rows.optionalText(r, 5), title: original(rows.text(r, 6), escaped: escaped),
                          body: original(rows.text(r, 7), escaped: escaped), notificationTs: rows.int(r, 8),
                          read: rows.bool(r, 9), lastSeen: rows.optionalInt(r, 10), bouncedAddress: rows.optionalText(r, 11))
    }

    /// Due mails no node holds a live lease on.
    public func dueMail(now: Int64, limit: Int, completion: @escaping StoreCompletion<[OutboxMail]>) {
        read({ db in
            let rows = try db.query("""
                SELECT \(Self.mailColumns)
                FROM outbox o JOIN notifications n ON n.id = o.notification_id LEFT JOIN users u ON u.id = o.user_id
                WHERE o.status = 'pending' AND o.due_at <= $1::bigint AND (o.lease_until IS NULL OR o.lease_until <= $1::bigint)
                ORDER BY o.due_at, o.id LIMIT $2::bigint
                """, [String(now), String(limit)])
            return (0..<rows.count).map { Self.mail(rows, $0) }
        }, completion: completion)
    }

    public func claimDueMail(node: String, now: Int64, leaseMs: Int64, limit: Int,
                             completion: @escaping StoreCompletion<[OutboxMail]>) {
        write({ db in
            // SKIP LOCKED: mails another node is claiming in this instant are left to it; a
            // lapsed lease (its node died mid-batch) is claimable again, and so is one of this
            // node's own (left by an earlier run: a node has one mailer).
            let rows = try db.query("""
                WITH claimed AS (
                    UPDATE outbox SET claimed_by = $3, lease_until = $1::bigint + $4::bigint
                    WHERE id IN (SELECT id FROM outbox
                                 WHERE status = 'pending' AND due_at <= $1::bigint
                                   AND (lease_until IS NULL OR lease_until <= $1::bigint OR claimed_by = $3)
                                 ORDER BY due_at, id LIMIT $2::bigint FOR UPDATE SKIP LOCKED)
                    RETURNING *
                )
                SELECT \(Self.mailColumns)
                FROM claimed o JOIN notifications n ON n.id = o.notification_id LEFT JOIN users u ON u.id = o.user_id
                ORDER BY o.due_at, o.id
                """, [String(now), String(limit), node, String(leaseMs)])
            return (0..<rows.count).map { Self.mail(rows, $0) }
        }, completion: completion)
    }

    public func finishMail(_ id: Int64, _ result: OutboxResult, node: String?, now: Int64, completion: @escaping StoreCompletion<Void>) {
        write({ db in
            // $1 the mail, $2 the claimer (NULL: any), $3… the outcome's values.
            let set: String
            let values: [String?]
            switch result {
            case .sent:
                set = "status = 'sent', attempts = attempts + 1, last_error = NULL, finished_at = $3::bigint"
                values = [String(now)]
            case .retry(let error, let at):
                set = "attempts = attempts + 1, last_error = $3, due_at = $4::bigint"
                values = [error, String(at)]
            case .failed(let error):
                set = "status = 'failed', attempts = attempts + 1, last_error = $3, finished_at = $4::bigint"
                values = [error, String(now)]
            case .skipped(let why):
                set = "status = 'skipped', last_error = $3, finished_at = $4::bigint"
                values = [why, String(now)]
            }
            let updated = try db.query("""
                UPDATE outbox SET \(set), claimed_by = NULL, lease_until = NULL
                WHERE id = $1::bigint AND ($2::text IS NULL OR claimed_by = $2)
                RETURNING user_id
                """, [String(id), node] + values)
            // The address is remembered as failed: no later mail goes to it until it changes.
            if case .failed = result, updated.count == 1 {
                _ = try db.query("UPDATE users SET email_bounced = email WHERE id = $1", [updated.text(0, 0)])
            }
        }, completion: completion)
    }

    public func outboxCounts(completion: @escaping StoreCompletion<OutboxCounts>) {
        read({ db in
            let rows = try db.query("SELECT status, COUNT(*) FROM outbox GROUP BY status", [])
            var c = OutboxCounts(pending: 0, sent: 0, failed: 0, skipped: 0)
            for r in 0..<rows.count {
                let n = Int(rows.int(r, 1))
                switch rows.text(r, 0) {
                case "pending": c.pending = n
                case "sent": c.sent = n
                case "failed": c.failed = n
                default: c.skipped += n
                }
            }
            return c
        }, completion: completion)
    }

    public func pendingMailCount(completion: @escaping StoreCompletion<Int>) {
        read({ db in
            let rows = try db.query("SELECT COUNT(*) FROM outbox WHERE status = 'pending'", [])
            return rows.count == 1 ? Int(rows.int(0, 0)) : 0
        }, completion: completion)
    }

    /// Two nodes racing one key: the INSERT of the claim makes the second wait for the first's
    /// commit, then it reads the first's answer, so `make` runs once and both answer alike.
    public func once<T: Sendable>(_ claim: IdempotencyClaim<T>, now: Int64, make: @escaping @Sendable () -> T,
                                  completion: @escaping StoreCompletion<Idempotent<T>>) {
        writeOnce(claim, now: now, { _ in make() }, completion)
    }

    public func pruneIdempotency(olderThan: Int64) {
        writeAndForget(background: false) { db in
            _ = try db.query("DELETE FROM idempotency WHERE created_at < $1::bigint", [String(olderThan)])
        }
    }
}
