import Protocol

// The notification side of the persistence seam: per-user notifications, broadcasts stored
// once, fan-outs in bounded chunks, the mail outbox, and idempotent answers for the bridge.
// Same contract as `Store` (see Store.swift): asynchronous; write completions after the
// commit, one at a time, in commit order, on one thread; read completions in no set order;
// dedupe by unique key (an Idempotency-Key is claimed by INSERT … ON CONFLICT); closures
// that run inside the transaction are pure.

public protocol NotificationStore: Sendable {
    /// Stores one notification per user (and their mails in the outbox), in one transaction,
    /// and says which of the ids have no user. `strict`: when any has none, nothing is stored
    /// (and nothing is kept under the claim's key: the refusal changed nothing). The check runs
    /// in the same writer job as the inserts, so it sees every user written before it, queued
    /// or committed, and the answer kept for the key is the one the inserts were made with.
    func createNotifications(_ content: NotificationContent, users: [String], strict: Bool, now: Int64,
                             emailDelayMs: Int64, claim: IdempotencyClaim<UserNotifications>?,
                             completion: @escaping StoreCompletion<Idempotent<UserNotifications>>)
    /// Records a role ('all' or a role name) fan-out; its chunks are stored by `fanoutStep`.
    func startFanout(_ content: NotificationContent, audience: String, now: Int64,
                     claim: IdempotencyClaim<FanoutStart>?, completion: @escaping StoreCompletion<Idempotent<FanoutStart>>)
    /// Stores the next `limit` recipients of a fan-out. `online`: the users connected when the
    /// step was submitted (a value, not a question to the hub from inside the transaction);
    /// those of the chunk come back in `delivered`, with their unread counts, to be pushed.
    func fanoutStep(_ id: Int64, limit: Int, now: Int64, emailDelayMs: Int64,
                    online: Set<String>, completion: @escaping StoreCompletion<FanoutStep>)
    func unfinishedFanouts(completion: @escaping StoreCompletion<[Int64]>)
    /// The unfinished fan-outs `node` is to run now: those no other node holds a live lease on
    /// (a fan-out is leased while it runs: its start and every step renew the lease for the
    /// store's own period, so the fan-outs of a node that died are taken over once it lapses).
    /// Each returned one is leased to `node`. Several nodes sharing one database run each
    /// fan-out once; with one node (SQLite) this is every unfinished fan-out.
    func claimUnfinishedFanouts(node: String, now: Int64, completion: @escaping StoreCompletion<[Int64]>)

    /// Stores a broadcast once.
    func createBroadcast(audience: String, title: String, body: String, data: String, now: Int64,
                         claim: IdempotencyClaim<NotificationRecord>?,
                         completion: @escaping StoreCompletion<Idempotent<NotificationRecord>>)

    /// Remembers that these notifications were written to a live socket of these users.
    func recordPushes(_ pushes: [PushedNotification])

    func notifications(for user: String, _ query: NotificationQuery, completion: @escaping StoreCompletion<NotificationPage>)
    func markNotificationsRead(user: String, _ selection: ReadSelection, service: String?, now: Int64,
                               completion: @escaping StoreCompletion<UnreadCounts>)
    func receipt(_ id: Int64, completion: @escaping StoreCompletion<NotificationReceipt?>)

    /// Users connected or disconnected at these times (fallback mail is not sent to who was around).
    func usersSeen(_ seen: [UserSeen])

    /// Mails due now, oldest first (with several nodes: those no node holds a lease on).
    func dueMail(now: Int64, limit: Int, completion: @escaping StoreCompletion<[OutboxMail]>)
    /// Mails due now, oldest first, each leased to `node` until `now + leaseMs`: no other node's
    /// claim returns it before the lease lapses or `finishMail` records it, so with several
    /// nodes on one database each mail is taken by one of them. Mails still leased to `node`
    /// are returned to it again (one mailer per node id: what it holds at its next claim was
    /// left by a run that stopped). With one node (SQLite) it is `dueMail`.
    func claimDueMail(node: String, now: Int64, leaseMs: Int64, limit: Int, completion: @escaping StoreCompletion<[OutboxMail]>)
    /// Records a mail's outcome and ends its lease. `node`: the claimer; with several nodes the
    /// outcome is recorded only while `node` holds the mail's claim (a node whose lease lapsed
    /// and was claimed again elsewhere records nothing). nil, and one node (SQLite): any claim.
    func finishMail(_ id: Int64, _ result: OutboxResult, node: String?, now: Int64, completion: @escaping StoreCompletion<Void>)
    func outboxCounts(completion: @escaping StoreCompletion<OutboxCounts>)
    /// Mails waiting (cheap: the pending index).
    func pendingMailCount(completion: @escaping StoreCompletion<Int>)

    /// Runs `make` once per key: a retry gets the stored first answer.
    func once<T: Sendable>(_ claim: IdempotencyClaim<T>, now: Int64, make: @escaping @Sendable () -> T,
                           completion: @escaping StoreCompletion<Idempotent<T>>)
    /// Forgets answers older than `olderThan`.
    func pruneIdempotency(olderThan: Int64)

    func dailyCounts(since: Int64, completion: @escaping StoreCompletion<[DailyCount]>)
    func userCounts(completion: @escaping StoreCompletion<[String: Int]>)
}

/// What `createNotifications` did.
public enum UserNotifications: Sendable, Equatable {
    /// One per user, in the order given; `unknown`: the ids the store has no user for (their
    /// notifications are stored all the same, for a user the backend has not synced yet).
    case stored([DeliveredNotification], unknown: [String])
    /// Strict, and these ids have no user: nothing was stored.
    case refused(unknown: [String])
}

extension NotificationStore {
    /// Not strict: stores for every id, known or not (the demo seed).
    public func createNotifications(_ content: NotificationContent, users: [String], now: Int64, emailDelayMs: Int64,
                                    claim: IdempotencyClaim<UserNotifications>?,
                                    completion: @escaping StoreCompletion<Idempotent<UserNotifications>>) {
        createNotifications(content, users: users, strict: false, now: now, emailDelayMs: emailDelayMs,
                            claim: claim, completion: completion)
    }
}

extension NotificationStore {
    /// `finishMail` whoever holds the claim.
    public func finishMail(_ id: Int64, _ result: OutboxResult, now: Int64, completion: @escaping StoreCompletion<Void>) {
        finishMail(id, result, node: nil, now: now, completion: completion)
    }
}
