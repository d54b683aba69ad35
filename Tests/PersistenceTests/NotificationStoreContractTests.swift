import Foundation
import Synchronization
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// NotificationStore's contract, the same assertions on SQLite and on PostgreSQL: each store's
// test class below runs every check of `NotificationContract` on a fresh store of its kind.
// (NotificationStoreNodesTests: what only several nodes on one PostgreSQL database can show.)

typealias FullStore = Store & NotificationStore

struct NotificationContract {
    let store: any FullStore
    let name: String

    /// Runs an async store call and waits (10 s at most) for its result.
    func answer<T: Sendable>(_ call: (@escaping StoreCompletion<T>) -> Void) throws -> T {
        let box = Locked<Result<T, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        call { r in box.withLock { $0 = r }; done.signal() }
        guard done.wait(timeout: .now() + 10) == .success, let r = box.withLock({ $0 }) else {
            throw StoreError.unavailable("timed out")
        }
        return try r.get()
    }

    static let content = NotificationContent(service: "courses", category: "updates", title: "T", body: "B", data: "{}")

    func user(_ id: String, _ role: String = "client", email: String? = nil) throws {
        _ = try answer { store.upsertUser(UserRecord(id: id, role: role, name: id, email: email), now: 1, completion: $0) }
    }

    func create(_ users: [String], strict: Bool = false, email: EmailMode? = nil, now: Int64 = 1_000, delay: Int64 = 0,
                service: String = "courses", claim: IdempotencyClaim<UserNotifications>? = nil) throws -> Idempotent<UserNotifications> {
        var c = Self.content
        c.email = email
        c.service = service
        return try answer { store.createNotifications(c, users: users, strict: strict, now: now, emailDelayMs: delay,
                                                     claim: claim, completion: $0) }
    }

    func stored(_ users: [String], email: EmailMode? = nil, now: Int64 = 1_000, delay: Int64 = 0,
                service: String = "courses") throws -> [DeliveredNotification] {
        guard case .fresh(.stored(let list, _)) = try create(users, email: email, now: now, delay: delay, service: service) else {
            throw StoreError.internalError("\(name): not stored")
        }
        return list
    }

    func page(_ user: String, _ q: NotificationQuery = NotificationQuery(limit: 50)) throws -> NotificationPage {
        try answer { store.notifications(for: user, q, completion: $0) }
    }

    /// Polls a fire-and-forget write's effect for up to 5 s.
    func eventually(_ what: String, _ check: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if try check() { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTFail("\(name): \(what) within 5 s")
    }

    // MARK: the checks

    func createdNotificationsAreListedNewestFirstWithUnreadCounts() throws {
        try user("ann")
        try user("bob")
        guard case .fresh(.stored(let list, let unknown)) = try create(["ann", "zed", "ann", "bob"]) else {
            return XCTFail("\(name): not strict: stored for every id")
        }
        XCTAssertEqual(unknown, ["zed"], "\(name): the id with no user is named")
        XCTAssertEqual(list.map(\.userId), ["ann", "zed", "ann", "bob"], "\(name): one per id, in the order given")
        XCTAssertEqual(list.map(\.record.id), list.map(\.record.id).sorted(), "\(name): ids in that order")
        XCTAssertEqual(Set(list.map(\.record.id)).count, 4)
        XCTAssertEqual(list.map { $0.unread.byService["courses"] ?? 0 }, [1, 1, 2, 1],
                       "\(name): each delivery carries the counts right after its own insert")
        _ = try stored(["ann"], now: 2_000, service: "website")
        let p = try page("ann")
        XCTAssertEqual(p.items.count, 3)
        XCTAssertEqual(p.items.map(\.id), p.items.map(\.id).sorted(by: >), "\(name): newest first")
        XCTAssertEqual(p.items.first?.service, "website")
        XCTAssertEqual(p.items.last?.title, "T")
        XCTAssertEqual(p.unread, UnreadCounts(byService: ["courses": 2, "website": 1]))
        XCTAssertFalse(p.more)
        let first = try page("ann", NotificationQuery(limit: 2))
        XCTAssertEqual(first.items.count, 2)
        XCTAssertTrue(first.more, "\(name): a third one is left")
        let rest = try page("ann", NotificationQuery(before: first.items.last?.id, limit: 2))
        XCTAssertEqual(rest.items.map(\.id), [p.items[2].id], "\(name): `before` pages on")
        XCTAssertFalse(rest.more)
        XCTAssertEqual(try page("ann", NotificationQuery(limit: 50, service: "website")).items.count, 1)
        XCTAssertEqual(try page("nobody").items, [], "\(name): a user with none has an empty page")
    }

    func strictRefusesUnknownIdsStoresNothingAndKeepsNoKey() throws {
        try user("ann")
        let claim = IdempotencyClaim<UserNotifications>(key: "k-strict", fingerprint: "POST /n", render: { _ in
            StoredResponse(status: 201, body: "stored")
        })
        guard case .fresh(.refused(let unknown)) = try create(["ann", "x1", "x2", "x1"], strict: true, claim: claim) else {
            return XCTFail("\(name): strict with unknown ids is refused")
        }
        XCTAssertEqual(unknown, ["x1", "x2", "x1"], "\(name): the unknown ids, in the order given")
        XCTAssertEqual(try page("ann").items, [], "\(name): nothing stored for the known one either")
        try user("x1")
        try user("x2")
        guard case .fresh(.stored(let list, let none)) = try create(["ann", "x1", "x2"], strict: true, claim: claim) else {
            return XCTFail("\(name): the refusal kept no answer: a retry under the key stores")
        }
        XCTAssertEqual(list.count, 3)
        XCTAssertEqual(none, [])
        guard case .replay(let r) = try create(["ann"], strict: true, claim: claim) else {
            return XCTFail("\(name): now the key replays")
        }
        XCTAssertEqual(r, StoredResponse(status: 201, body: "stored"))
    }

    func onceRunsMakeOnceReplaysAndRefusesAnotherRequest() throws {
        let made = Atomic<Int>(0)
        let claim = IdempotencyClaim<Int>(key: "k-once", fingerprint: "POST /token", render: { StoredResponse(status: 200, body: "v\($0)") })
        let make: @Sendable () -> Int = { made.add(1, ordering: .relaxed).newValue }
        guard case .fresh(1) = try answer({ store.once(claim, now: 100, make: make, completion: $0) }) else {
            return XCTFail("\(name): the first call makes")
        }
        guard case .replay(let r) = try answer({ store.once(claim, now: 200, make: make, completion: $0) }) else {
            return XCTFail("\(name): a retry replays")
        }
        XCTAssertEqual(r, StoredResponse(status: 200, body: "v1"))
        let other = IdempotencyClaim<Int>(key: "k-once", fingerprint: "POST /other", render: { _ in StoredResponse(status: 200, body: "") })
        guard case .mismatch = try answer({ store.once(other, now: 300, make: make, completion: $0) }) else {
            return XCTFail("\(name): the key for another request is a mismatch")
        }
        XCTAssertEqual(made.load(ordering: .relaxed), 1, "\(name): made once")
        store.pruneIdempotency(olderThan: 101)
        try eventually("the pruned key is free again") {
            if case .fresh = try answer({ store.once(claim, now: 400, make: make, completion: $0) }) { return true }
            return false
        }
    }

    func aFanOutStoresItsAudienceInChunksAndThenIsFinished() throws {
        for id in ["a", "b", "c", "d", "e"] { try user(id) }
        try user("agent1", "website_agent")
        var c = Self.content
        c.email = .now
        guard case .fresh(let start) = try answer({ store.startFanout(c, audience: "client", now: 1, claim: nil, completion: $0) }) else {
            return XCTFail("\(name): a fan-out without a key starts fresh")
        }
        XCTAssertEqual(start.count, 5, "\(name): the clients, not the agent")
        try user("late") // after the start: not part of it
        XCTAssertEqual(try answer { store.unfinishedFanouts(completion: $0) }, [start.id])
        let one = try answer { store.fanoutStep(start.id, limit: 2, now: 2, emailDelayMs: 0, online: ["b", "c", "zed"], completion: $0) }
        XCTAssertEqual(one.stored, 2)
        XCTAssertEqual(one.delivered.map(\.userId), ["b"], "\(name): of the chunk (a, b) only b was online")
        XCTAssertEqual(one.delivered.first?.unread, UnreadCounts(byService: ["courses": 1]))
        XCTAssertEqual(one.delivered.first?.record.title, "T")
        XCTAssertFalse(one.finished)
        let two = try answer { store.fanoutStep(start.id, limit: 2, now: 3, emailDelayMs: 0, online: [], completion: $0) }
        XCTAssertEqual(two.stored, 2)
        XCTAssertEqual(two.delivered, [])
        let three = try answer { store.fanoutStep(start.id, limit: 2, now: 4, emailDelayMs: 0, online: ["e"], completion: $0) }
        XCTAssertEqual(three.stored, 1)
        XCTAssertEqual(three.delivered.map(\.userId), ["e"])
        XCTAssertTrue(three.finished)
        let after = try answer { store.fanoutStep(start.id, limit: 2, now: 5, emailDelayMs: 0, online: [], completion: $0) }
        XCTAssertEqual(after, FanoutStep(delivered: [], stored: 0, finished: true), "\(name): a finished fan-out stores nothing")
        XCTAssertEqual(try answer { store.unfinishedFanouts(completion: $0) }, [])
        XCTAssertEqual(try answer { store.claimUnfinishedFanouts(node: "n1", now: 6, completion: $0) }, [])
        for id in ["a", "b", "c", "d", "e"] { XCTAssertEqual(try page(id).items.count, 1, "\(name): \(id) got it once") }
        XCTAssertEqual(try page("late").items, [])
        XCTAssertEqual(try page("agent1").items, [])
        XCTAssertEqual(try answer { store.outboxCounts(completion: $0) }.pending, 5, "\(name): a mail each")
        XCTAssertEqual(try answer { store.fanoutStep(987_654, limit: 2, now: 5, emailDelayMs: 0, online: [], completion: $0) }.finished,
                       true, "\(name): an unknown fan-out is finished")
    }

    func anUnfinishedFanOutIsClaimedByTheNodeResumingIt() throws {
        try user("a")
        guard case .fresh(let start) = try answer({ store.startFanout(Self.content, audience: "all", now: 1, claim: nil, completion: $0) }) else {
            return XCTFail("\(name): started")
        }
        let claimKey = IdempotencyClaim<FanoutStart>(key: "k-fan", fingerprint: "f", render: { StoredResponse(status: 202, body: "\($0.id)") })
        guard case .fresh(let keyed) = try answer({ store.startFanout(Self.content, audience: "all", now: 1, claim: claimKey, completion: $0) }),
              case .replay(let r) = try answer({ store.startFanout(Self.content, audience: "all", now: 2, claim: claimKey, completion: $0) }) else {
            return XCTFail("\(name): a keyed start replays")
        }
        XCTAssertEqual(r.body, "\(keyed.id)")
        // Long after the start, as after a restart: the node resuming takes both.
        XCTAssertEqual(try answer { store.claimUnfinishedFanouts(node: "n1", now: 1_000_000, completion: $0) }, [start.id, keyed.id])
    }

    func broadcastsAreStoredOnceWithReadStatePerUser() throws {
        try user("ann")
        try user("bob")
        try user("ag", "website_agent")
        let all = try answer { store.createBroadcast(audience: "all", title: "Hi", body: "b", data: "{}", now: 10, claim: nil, completion: $0) }
        let agents = try answer { store.createBroadcast(audience: "website_agent", title: "Ag", body: "", data: "{}", now: 11, claim: nil, completion: $0) }
        guard case .fresh(let everyone) = all, case .fresh(let toAgents) = agents else { return XCTFail("\(name): stored") }
        XCTAssertEqual(everyone.audience, "all")
        XCTAssertEqual(try page("ann").items.map(\.id), [everyone.id], "\(name): a client sees 'all' only")
        XCTAssertEqual(try page("ag").items.map(\.id), [toAgents.id, everyone.id])
        XCTAssertEqual(try page("ag").unread, UnreadCounts(byService: ["platform": 2]))
        _ = try stored(["ann"])
        let left = try answer { store.markNotificationsRead(user: "ann", .ids([everyone.id]), service: nil, now: 20, completion: $0) }
        XCTAssertEqual(left, UnreadCounts(byService: ["courses": 1]), "\(name): the broadcast is read for ann")
        XCTAssertEqual(try page("ann").items.first(where: { $0.id == everyone.id })?.read, true)
        XCTAssertEqual(try page("bob").unread, UnreadCounts(byService: ["platform": 1]), "\(name): and still unread for bob")
        XCTAssertEqual(try page("ann", NotificationQuery(limit: 50, unreadOnly: true)).items.count, 1)
        let none = try answer { store.markNotificationsRead(user: "ag", .all, service: "platform", now: 21, completion: $0) }
        XCTAssertEqual(none, UnreadCounts())
        XCTAssertEqual(try page("bob").unread, UnreadCounts(byService: ["platform": 1]))
        let claim = IdempotencyClaim<NotificationRecord>(key: "k-b", fingerprint: "POST /b", render: { StoredResponse(status: 201, body: "\($0.id)") })
        func post(_ c: IdempotencyClaim<NotificationRecord>) throws -> Idempotent<NotificationRecord> {
            try answer { store.createBroadcast(audience: "all", title: "Once", body: "", data: "{}", now: 30, claim: c, completion: $0) }
        }
        guard case .fresh(let once) = try post(claim), case .replay(let again) = try post(claim) else {
            return XCTFail("\(name): a keyed broadcast is stored once, then replayed")
        }
        XCTAssertEqual(again.body, "\(once.id)")
        guard case .mismatch = try post(IdempotencyClaim(key: "k-b", fingerprint: "POST /other", render: claim.render)) else {
            return XCTFail("\(name): the key for another request is a mismatch")
        }
        XCTAssertEqual(try page("bob").items.filter { $0.title == "Once" }.count, 1)
    }

    func markingReadTouchesOnlyTheUsersOwnAndTheServiceAsked() throws {
        try user("ann")
        try user("bob")
        let annIDs = try stored(["ann", "ann"]).map(\.record.id)
        _ = try stored(["ann"], service: "website")
        let bobs = try stored(["bob"]).map(\.record.id)
        let a = try answer { store.markNotificationsRead(user: "ann", .ids(bobs + [annIDs[0]]), service: nil, now: 5, completion: $0) }
        XCTAssertEqual(a, UnreadCounts(byService: ["courses": 1, "website": 1]))
        XCTAssertEqual(try page("bob").unread, UnreadCounts(byService: ["courses": 1]), "\(name): another user's id is not marked")
        let b = try answer { store.markNotificationsRead(user: "ann", .all, service: "website", now: 6, completion: $0) }
        XCTAssertEqual(b, UnreadCounts(byService: ["courses": 1]), "\(name): only that service")
        let c = try answer { store.markNotificationsRead(user: "ann", .all, service: nil, now: 7, completion: $0) }
        XCTAssertEqual(c, UnreadCounts())
        XCTAssertEqual(try answer { store.markNotificationsRead(user: "nobody", .ids([]), service: nil, now: 8, completion: $0) }, UnreadCounts())
    }

    func receiptsTellStoredPushedReadAndMail() throws {
        try user("ann", email: "ann@example.com")
        try user("bob")
        let own = try stored(["ann"], email: .now)[0].record.id
        var r = try answer { store.receipt(own, completion: $0) }
        XCTAssertEqual(r?.addressed, 1)
        XCTAssertEqual(r?.recipients.first, .init(user: "ann", stored: true, pushed: false, read: false, email: "pending"))
        guard case .fresh(let b) = try answer({ store.createBroadcast(audience: "all", title: "B", body: "", data: "{}", now: 1, claim: nil, completion: $0) }) else {
            return XCTFail("\(name): broadcast")
        }
        store.recordPushes([PushedNotification(notification: own, user: "ann", at: 5),
                            PushedNotification(notification: b.id, user: "bob", at: 6),
                            PushedNotification(notification: b.id, user: "bob", at: 7),
                            PushedNotification(notification: own, user: "bob", at: 8)])
        try eventually("the pushes are recorded") { try answer { store.receipt(own, completion: $0) }?.recipients.first?.pushed == true }
        _ = try answer { store.markNotificationsRead(user: "ann", .ids([own, b.id]), service: nil, now: 9, completion: $0) }
        r = try answer { store.receipt(own, completion: $0) }
        XCTAssertEqual(r?.recipients, [.init(user: "ann", stored: true, pushed: true, read: true, email: "pending")],
                       "\(name): bob's push of ann's notification is not hers")
        try eventually("the broadcast's push is recorded") {
            try answer { store.receipt(b.id, completion: $0) }?.recipients.contains { $0.user == "bob" } == true
        }
        let br = try answer { store.receipt(b.id, completion: $0) }
        XCTAssertEqual(br?.addressed, 2)
        XCTAssertEqual(br?.record.read, false)
        XCTAssertEqual(br?.recipients, [.init(user: "ann", stored: true, pushed: false, read: true, email: nil),
                                        .init(user: "bob", stored: true, pushed: true, read: false, email: nil)])
        XCTAssertNil(try answer { store.receipt(424_242, completion: $0) }, "\(name): no such notification")
    }

    func theOutboxHoldsDueMailUntilFinished() throws {
        try user("ann", email: "ann@example.com")
        try user("bob", email: "bob@example.com")
        let now = try stored(["ann"], email: .now, now: 1_000)[0].record.id
        let later = try stored(["bob"], email: .fallback, now: 1_000, delay: 5_000)[0].record.id
        let zed = try stored(["zed"], email: .now, now: 1_000)[0].record.id
        XCTAssertEqual(try page("bob").items.count, 1)
        XCTAssertEqual(try answer { store.pendingMailCount(completion: $0) }, 3)
        let due = try answer { store.dueMail(now: 1_000, limit: 10, completion: $0) }
        XCTAssertEqual(due.map(\.notificationId), [now, zed], "\(name): the fallback is not due yet")
        XCTAssertEqual(due.first?.address, "ann@example.com")
        XCTAssertEqual(due.first?.mode, .now)
        XCTAssertEqual(due.first?.attempts, 0)
        XCTAssertEqual(due.first?.title, "T")
        XCTAssertNil(due.last?.address, "\(name): an unknown user has no address")
        XCTAssertEqual(try answer { store.dueMail(now: 1_000, limit: 1, completion: $0) }.map(\.notificationId), [now])
        store.usersSeen([UserSeen(user: "bob", at: 3_000), UserSeen(user: "bob", at: 2_000), UserSeen(user: "nobody", at: 1)])
        try eventually("the latest last-seen time is stored") {
            try answer { store.dueMail(now: 6_000, limit: 10, completion: $0) }.first { $0.userId == "bob" }?.lastSeen == 3_000
        }
        let claimed = try answer { store.claimDueMail(node: "n1", now: 6_000, leaseMs: 60_000, limit: 10, completion: $0) }
        XCTAssertEqual(claimed.map(\.notificationId), [now, zed, later], "\(name): every due mail, oldest first")
        XCTAssertEqual(claimed.last?.mode, .fallback)
        XCTAssertEqual(claimed.last?.read, false)
        let (ann, z, bob) = (claimed[0].id, claimed[1].id, claimed[2].id)
        _ = try answer { store.finishMail(ann, .retry(error: "421", retryAt: 9_000), now: 6_000, completion: $0) }
        _ = try answer { store.finishMail(z, .skipped("no address"), now: 6_000, completion: $0) }
        _ = try answer { store.finishMail(bob, .failed("550 no such user"), now: 6_000, completion: $0) }
        XCTAssertEqual(try answer { store.outboxCounts(completion: $0) }, OutboxCounts(pending: 1, sent: 0, failed: 1, skipped: 1))
        XCTAssertEqual(try answer { store.dueMail(now: 8_999, limit: 10, completion: $0) }, [], "\(name): the retry waits")
        let retried = try answer { store.dueMail(now: 9_000, limit: 10, completion: $0) }
        XCTAssertEqual(retried.map(\.id), [ann])
        XCTAssertEqual(retried.first?.attempts, 1)
        _ = try answer { store.finishMail(ann, .sent, now: 9_100, completion: $0) }
        XCTAssertEqual(try answer { store.outboxCounts(completion: $0) }, OutboxCounts(pending: 0, sent: 1, failed: 1, skipped: 1))
        XCTAssertEqual(try answer { store.pendingMailCount(completion: $0) }, 0)
        XCTAssertEqual(try answer { store.receipt(now, completion: $0) }?.recipients.first?.email, "sent")
        XCTAssertEqual(try answer { store.receipt(later, completion: $0) }?.recipients.first?.email, "failed")
        // bob's address failed permanently: his later mail says so.
        _ = try stored(["bob"], email: .now, now: 10_000)
        XCTAssertEqual(try answer { store.dueMail(now: 10_000, limit: 10, completion: $0) }.first?.bouncedAddress, "bob@example.com")
        _ = try answer { store.finishMail(999_999, .sent, now: 1, completion: $0) } // no such mail: nothing to do
    }

    func dailyAndUserCountsArePerServiceAndDay() throws {
        let day: Int64 = 86_400_000
        try user("ann")
        try user("ag", "website_agent")
        let key = ConversationKey(service: "website", clientId: "ann")
        let ann = UserRecord(id: "ann", role: "client", name: "Ann")
        for ts in [day * 20_000 + 5, day * 20_000 + 6, day * 20_001] {
            _ = try answer { store.appendMessage(NewMessage(conversation: key, sender: ann, text: "m", clientMsgId: nil, ts: ts), completion: $0) }
        }
        _ = try stored(["ann"], now: day * 20_000 + 7)
        _ = try stored(["ann"], now: day * 19_999, service: "website") // before `since`
        let counts = try answer { store.dailyCounts(since: day * 20_000, completion: $0) }
        XCTAssertEqual(counts, [
            DailyCount(day: "2024-10-04", service: "courses", messages: 0, notifications: 1),
            DailyCount(day: "2024-10-04", service: "website", messages: 2, notifications: 0),
            DailyCount(day: "2024-10-05", service: "website", messages: 1, notifications: 0),
        ], "\(name): UTC days, one row per day and service")
        XCTAssertEqual(try answer { store.userCounts(completion: $0) }, ["client": 1, "website_agent": 1])
    }

    func textsAreStoredExactlyIncludingNULBackslashesAndUnicode() throws {
        try user("ann", email: "ann@example.com")
        let odd = ["a\u{0}b", #"back\slash \0 and "quotes""#, "", "日本語 👋🏽 e\u{301}", "\\\u{0}\\"]
        for text in odd {
            let c = NotificationContent(service: "courses", category: "updates", title: "t" + text, body: text,
                                        data: #"{"k":"\u0000"}"#, email: .now)
            guard case .fresh(.stored(let list, _)) = try answer({ store.createNotifications(c, users: ["ann"], strict: true, now: 1,
                                                                                            emailDelayMs: 0, claim: nil, completion: $0) }),
                  let made = list.first?.record else { return XCTFail("\(name): stored") }
            XCTAssertEqual(made.body, text)
            let listed = try page("ann").items.first
            XCTAssertEqual(listed?.title, "t" + text, "\(name): the title as posted")
            XCTAssertEqual(listed?.body, text, "\(name): the body as posted")
            XCTAssertEqual(listed?.data, c.data)
            let mail = try answer { store.dueMail(now: 1, limit: 100, completion: $0) }.last
            XCTAssertEqual(mail?.title, "t" + text, "\(name): the mail's title")
            XCTAssertEqual(mail?.body, text)
            XCTAssertEqual(try answer { store.receipt(made.id, completion: $0) }?.record.body, text)
        }
        guard case .fresh(let b) = try answer({ store.createBroadcast(audience: "all", title: "x\u{0}y", body: "\\0", data: "{}", now: 2,
                                                                      claim: nil, completion: $0) }) else { return XCTFail("\(name): broadcast") }
        XCTAssertEqual(try page("ann").items.first { $0.id == b.id }?.title, "x\u{0}y")
        XCTAssertEqual(try page("ann").items.first { $0.id == b.id }?.body, "\\0")
        var c = Self.content
        c.title = "fan\u{0}out"
        c.body = "\\"
        guard case .fresh(let f) = try answer({ store.startFanout(c, audience: "client", now: 3, claim: nil, completion: $0) }) else {
            return XCTFail("\(name): fan-out")
        }
        let step = try answer { store.fanoutStep(f.id, limit: 10, now: 4, emailDelayMs: 0, online: ["ann"], completion: $0) }
        XCTAssertEqual(step.delivered.first?.record.title, "fan\u{0}out")
        XCTAssertEqual(try page("ann").items.first?.title, "fan\u{0}out", "\(name): a fan-out's texts as posted")
        XCTAssertEqual(try page("ann").items.first?.body, "\\")
    }

    func aClosedStoreRefusesNewWork() throws {
        store.close()
        XCTAssertThrowsError(try answer { store.pendingMailCount(completion: $0) }) {
            XCTAssertEqual($0 as? StoreError, .closing, "\(name): a read after close")
        }
        XCTAssertThrowsError(try create(["ann"])) {
            XCTAssertEqual($0 as? StoreError, .closing, "\(name): a write after close")
        }
    }
}

// MARK: the stores

final class SQLiteNotificationStoreContractTests: XCTestCase {
    private var made: (store: SQLiteStore, dir: String)!
    private var contract: NotificationContract { NotificationContract(store: made.store, name: "SQLite") }

    override func setUpWithError() throws { made = try TestStores.sqlite() }
    override func tearDown() {
        made?.store.close()
        if let dir = made?.dir { try? FileManager.default.removeItem(atPath: dir) }
    }

    func testCreatedNotificationsAreListedNewestFirstWithUnreadCounts() throws { try contract.createdNotificationsAreListedNewestFirstWithUnreadCounts() }
    func testStrictRefusesUnknownIdsStoresNothingAndKeepsNoKey() throws { try contract.strictRefusesUnknownIdsStoresNothingAndKeepsNoKey() }
    func testOnceRunsMakeOnceReplaysAndRefusesAnotherRequest() throws { try contract.onceRunsMakeOnceReplaysAndRefusesAnotherRequest() }
    func testAFanOutStoresItsAudienceInChunksAndThenIsFinished() throws { try contract.aFanOutStoresItsAudienceInChunksAndThenIsFinished() }
    func testAnUnfinishedFanOutIsClaimedByTheNodeResumingIt() throws { try contract.anUnfinishedFanOutIsClaimedByTheNodeResumingIt() }
    func testBroadcastsAreStoredOnceWithReadStatePerUser() throws { try contract.broadcastsAreStoredOnceWithReadStatePerUser() }
    func testMarkingReadTouchesOnlyTheUsersOwnAndTheServiceAsked() throws { try contract.markingReadTouchesOnlyTheUsersOwnAndTheServiceAsked() }
    func testReceiptsTellStoredPushedReadAndMail() throws { try contract.receiptsTellStoredPushedReadAndMail() }
    func testTheOutboxHoldsDueMailUntilFinished() throws { try contract.theOutboxHoldsDueMailUntilFinished() }
    func testDailyAndUserCountsArePerServiceAndDay() throws { try contract.dailyAndUserCountsArePerServiceAndDay() }
    func testTextsAreStoredExactlyIncludingNULBackslashesAndUnicode() throws {
        try contract.textsAreStoredExactlyIncludingNULBackslashesAndUnicode()
    }
    func testAClosedStoreRefusesNewWork() throws { try contract.aClosedStoreRefusesNewWork() }
}

final class PostgresNotificationStoreContractTests: XCTestCase {
    private var made: (store: PostgresStore, schema: TestPGSchema)!
    private var contract: NotificationContract { NotificationContract(store: made.store, name: "PostgreSQL") }

    override func setUpWithError() throws { made = try TestStores.postgres() }
    override func tearDown() {
        made?.store.close()
        made?.schema.drop()
    }

    func testCreatedNotificationsAreListedNewestFirstWithUnreadCounts() throws { try contract.createdNotificationsAreListedNewestFirstWithUnreadCounts() }
    func testStrictRefusesUnknownIdsStoresNothingAndKeepsNoKey() throws { try contract.strictRefusesUnknownIdsStoresNothingAndKeepsNoKey() }
    func testOnceRunsMakeOnceReplaysAndRefusesAnotherRequest() throws { try contract.onceRunsMakeOnceReplaysAndRefusesAnotherRequest() }
    func testAFanOutStoresItsAudienceInChunksAndThenIsFinished() throws { try contract.aFanOutStoresItsAudienceInChunksAndThenIsFinished() }
    func testAnUnfinishedFanOutIsClaimedByTheNodeResumingIt() throws { try contract.anUnfinishedFanOutIsClaimedByTheNodeResumingIt() }
    func testBroadcastsAreStoredOnceWithReadStatePerUser() throws { try contract.broadcastsAreStoredOnceWithReadStatePerUser() }
    func testMarkingReadTouchesOnlyTheUsersOwnAndTheServiceAsked() throws { try contract.markingReadTouchesOnlyTheUsersOwnAndTheServiceAsked() }
    func testReceiptsTellStoredPushedReadAndMail() throws { try contract.receiptsTellStoredPushedReadAndMail() }
    func testTheOutboxHoldsDueMailUntilFinished() throws { try contract.theOutboxHoldsDueMailUntilFinished() }
    func testDailyAndUserCountsArePerServiceAndDay() throws { try contract.dailyAndUserCountsArePerServiceAndDay() }
    func testTextsAreStoredExactlyIncludingNULBackslashesAndUnicode() throws {
        try contract.textsAreStoredExactlyIncludingNULBackslashesAndUnicode()
    }
    func testAClosedStoreRefusesNewWork() throws { try contract.aClosedStoreRefusesNewWork() }
}
