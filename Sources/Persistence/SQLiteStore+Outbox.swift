// The mail outbox and the Idempotency-Key answers on SQLite.
extension SQLiteStore {
    public func dueMail(now: Int64, limit: Int, completion: @escaping StoreCompletion<[OutboxMail]>) {
        read({ db in
            let s = try db.statement("""
                SELECT o.id, o.notification_id, o.user_id, o.mode, o.attempts, u.email, n.title, n.body, n.ts,
                       n.read_at IS NOT NULL, u.last_seen_at, u.email_bounced
                FROM outbox o JOIN notifications n ON n.id = o.notification_id LEFT JOIN users u ON u.id = o.user_id
                WHERE o.status = 'pending' AND o.due_at <= ?1 ORDER BY o.due_at, o.id LIMIT ?2
                """)
            try s.bind(.int(now), .int(Int64(limit)))
            var out: [OutboxMail] = []
            while try s.step() {
                out.append(OutboxMail(id: s.int(0), notificationId: s.int(1), userId: s.text(2),
                                      mode: EmailMode(rawValue: s.text(3)) ?? .now, attempts: Int(s.int(4)),
                                      address: s.optionalText(5), title: s.text(6), body: s.text(7), notificationTs: s.int(8),
                                      read: s.int(9) != 0, lastSeen: s.optionalInt(10), bouncedAddress: s.optionalText(11)))
            }
            return out
        }, completion)
    }

    /// One node, one mailer thread: the due mails are its own, no lease needed.
    public func claimDueMail(node: String, now: Int64, leaseMs: Int64, limit: Int,
                             completion: @escaping StoreCompletion<[OutboxMail]>) {
        dueMail(now: now, limit: limit, completion: completion)
    }

    /// One node: `node` is not needed (no claims).
    public func finishMail(_ id: Int64, _ result: OutboxResult, node: String?, now: Int64, completion: @escaping StoreCompletion<Void>) {
        write({ db in
            switch result {
            case .sent:
                try db.statement("UPDATE outbox SET status = 'sent', attempts = attempts + 1, last_error = NULL, finished_at = ?2 WHERE id = ?1")
                    .bind(.int(id), .int(now)).run()
            case .retry(let error, let at):
                try db.statement("UPDATE outbox SET attempts = attempts + 1, last_error = ?2, due_at = ?3 WHERE id = ?1")
                    .bind(.int(id), .text(error), .int(at)).run()
            case .failed(let error):
                try db.statement("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2, finished_at = ?3 WHERE id = ?1")
                    .bind(.int(id), .text(error), .int(now)).run()
                // The address is remembered as failed: no later mail goes to it until it changes.
                try db.statement("UPDATE users SET email_bounced = email WHERE id = (SELECT user_id FROM outbox WHERE id = ?1)")
                    .bind(.int(id)).run()
            case .skipped(let why):
                try db.statement("UPDATE outbox SET status = 'skipped', last_error = ?2, finished_at = ?3 WHERE id = ?1")
                    .bind(.int(id), .text(why), .int(now)).run()
            }
        }, completion)
    }

    public func outboxCounts(completion: @escaping StoreCompletion<OutboxCounts>) {
        read({ db in
            let s = try db.statement("SELECT status, COUNT(*) FROM outbox GROUP BY status")
            var c = OutboxCounts(pending: 0, sent: 0, failed: 0, skipped: 0)
            while try s.step() {
                let n = Int(s.int(1))
                switch s.text(0) {
                case "pending": c.pending = n
                case "sent": c.sent = n
                case "failed": c.failed = n
                default: c.skipped += n
                }
            }
            return c
        }, completion)
    }

    public func pendingMailCount(completion: @escaping StoreCompletion<Int>) {
        read({ db in
            let s = try db.statement("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
            return try s.step() ? Int(s.int(0)) : 0
        }, completion)
    }

    public func once<T: Sendable>(_ claim: IdempotencyClaim<T>, now: Int64, make: @escaping @Sendable () -> T,
                                  completion: @escaping StoreCompletion<Idempotent<T>>) {
        writeOnce(claim, now: now, { _ in make() }, completion)
    }

    public func pruneIdempotency(olderThan: Int64) {
        write({ db in
            try db.statement("DELETE FROM idempotency WHERE created_at < ?1").bind(.int(olderThan)).run()
        }, { _ in })
    }
}
