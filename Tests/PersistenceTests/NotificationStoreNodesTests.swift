import Foundation
import Synchronization
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// Several nodes on one PostgreSQL database, as two PostgresStores on one schema: an
// Idempotency-Key raced from both, the outbox and a fan-out claimed or stepped from both at
// once, unread counts made on both for one user.
final class PostgresNotificationStoreNodesTests: XCTestCase {
    private var made: (store: PostgresStore, schema: TestPGSchema)!
    private var second: PostgresStore?

    override func setUpWithError() throws { made = try TestStores.postgres() }
    override func tearDown() {
        second?.close()
        made?.store.close()
        made?.schema.drop()
    }

    /// The test's store and a second one on the same schema: two nodes.
    private func twoNodes() throws -> TwoNodes {
        let b = try PostgresStore(url: made.schema.url, now: 1, messageWording: MessageNotificationText.wording)
        second = b
        return TwoNodes(a: NotificationContract(store: made.store, name: "node a"), b: NotificationContract(store: b, name: "node b"))
    }

    func testTwoNodesRacingOnceOnOneKeyMakeOnceAndAnswerAlike() throws { try twoNodes().racingOnceOnOneKeyMakesOnceAndBothAnswerAlike() }
    func testTwoNodesClaimingDueMailAtOnceTakeEachMailOnce() throws { try twoNodes().claimingDueMailAtOnceTakesEachMailOnce() }
    func testALeasedMailIsItsNodesUntilTheLeaseLapses() throws { try twoNodes().aLeasedMailIsItsNodesUntilTheLeaseLapses() }
    func testOnlyTheClaimHolderRecordsAMailsOutcome() throws { try twoNodes().onlyTheClaimHolderRecordsAMailsOutcome() }
    func testARunningFanOutIsTakenOverOnlyWhenItsLeaseLapses() throws {
        try twoNodes().aRunningFanOutIsClaimedByOneNodeAndTakenOverOnlyWhenItsLeaseLapses()
    }
    func testTwoNodesSteppingOneFanOutStoreEachUserOnce() throws { try twoNodes().steppingOneFanOutFromTwoNodesAtOnceStoresEachUserOnce() }
    func testUnreadCountsFromTwoNodesOnlyGoUpInCompletionOrder() throws { try twoNodes().unreadCountsPushedFromTwoNodesNeverGoBack() }
    func testUnreadCountsFromMessagesOnOneNodeAndPostsOnTheOtherOnlyGoUp() throws {
        try twoNodes().unreadCountsFromMessagesAndPostsNeverGoBack()
    }
}

/// Two stores on one database: two nodes.
private struct TwoNodes {
    let a: NotificationContract
    let b: NotificationContract

    func racingOnceOnOneKeyMakesOnceAndBothAnswerAlike() throws {
        let made = Atomic<Int>(0)
        let answers = Locked<[String: [String]]>([:])
        let group = DispatchGroup()
        let keys = 40
        for k in 0..<keys {
            let claim = IdempotencyClaim<Int>(key: "race-\(k)", fingerprint: "POST /t", render: { StoredResponse(status: 200, body: "made \($0)") })
            for node in [a, b] {
                group.enter()
                node.store.once(claim, now: 1, make: { made.add(1, ordering: .relaxed).newValue }) { r in
                    let said: String = switch r {
                    case .success(.fresh(let v)): "made \(v)"
                    case .success(.replay(let stored)): stored.body
                    case .success(.mismatch): "mismatch"
                    case .failure(let e): "failed \(e)"
                    }
                    answers.withLock { $0["race-\(k)", default: []].append(said) }
                    group.leave()
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success, "every call answered")
        XCTAssertEqual(made.load(ordering: .relaxed), keys, "one make() per key across both nodes")
        for (key, said) in answers.withLock({ $0 }) {
            XCTAssertEqual(said.count, 2, key)
            XCTAssertEqual(Set(said).count, 1, "\(key): both nodes answer alike: \(said)")
            XCTAssertTrue(said.first?.hasPrefix("made ") == true, "\(key): \(said)")
        }
    }

    func claimingDueMailAtOnceTakesEachMailOnce() throws {
        let total = 300
        let users = (0..<total).map { "u\($0)" }
        for chunk in stride(from: 0, to: total, by: 100) {
            _ = try a.stored(Array(users[chunk..<min(chunk + 100, total)]), email: .now, now: 1_000)
        }
        // Four mailers (two node ids per store) claim and send until nothing is due.
        let taken = Locked<[String: [Int64]]>([:])
        let failures = Locked<[String]>([])
        let group = DispatchGroup()
        for (name, node) in [("a", a), ("b", b)] {
            for mailer in 1...2 {
                group.enter()
                Thread.detachNewThread {
                    defer { group.leave() }
                    let id = "\(name)\(mailer)"
                    while true {
                        do {
                            let got = try node.answer {
                                node.store.claimDueMail(node: id, now: 2_000, leaseMs: 60_000, limit: 7, completion: $0)
                            }
                            if got.isEmpty { return }
                            taken.withLock { $0[id, default: []] += got.map(\.id) }
                            for mail in got { _ = try node.answer { node.store.finishMail(mail.id, .sent, now: 2_000, completion: $0) } }
                        } catch {
                            failures.withLock { $0.append("\(error)") }
                            return
                        }
                    }
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "the mailers finished")
        XCTAssertEqual(failures.withLock { $0 }, [])
        let byNode = taken.withLock { $0 }
        let all = byNode.values.flatMap { $0 }
        XCTAssertEqual(all.count, total, "each mail claimed once (\(byNode.mapValues(\.count)))")
        XCTAssertEqual(Set(all).count, total, "no mail claimed by two mailers")
        XCTAssertEqual(try a.answer { a.store.outboxCounts(completion: $0) }, OutboxCounts(pending: 0, sent: total, failed: 0, skipped: 0))
    }

    func aLeasedMailIsItsNodesUntilTheLeaseLapses() throws {
        let ids = try a.stored(["p", "q", "r"], email: .now, now: 1_000).map(\.record.id)
        let held = try a.answer { a.store.claimDueMail(node: "a1", now: 2_000, leaseMs: 60_000, limit: 10, completion: $0) }
        XCTAssertEqual(held.map(\.notificationId), ids)
        XCTAssertEqual(try b.answer { b.store.claimDueMail(node: "c", now: 3_000, leaseMs: 60_000, limit: 10, completion: $0) }, [],
                       "no other node takes a leased mail")
        XCTAssertEqual(try b.answer { b.store.dueMail(now: 3_000, limit: 10, completion: $0) }, [], "nor lists it as due")
        // A node's own leased mails are its again (an earlier run of it stopped mid-batch)...
        let own = try a.answer { a.store.claimDueMail(node: "a1", now: 3_000, leaseMs: 60_000, limit: 10, completion: $0) }
        XCTAssertEqual(own.map(\.id), held.map(\.id))
        // ...a lapsed lease (its node died) is anyone's; a finished mail never is.
        _ = try a.answer { a.store.finishMail(held[0].id, .sent, now: 3_000, completion: $0) }
        XCTAssertEqual(try b.answer { b.store.claimDueMail(node: "c", now: 63_000 - 1, leaseMs: 60_000, limit: 10, completion: $0) }, [])
        let lapsed = try b.answer { b.store.claimDueMail(node: "c", now: 63_000, leaseMs: 60_000, limit: 10, completion: $0) }
        XCTAssertEqual(lapsed.map(\.id), Array(held.map(\.id).dropFirst()))
    }

    func onlyTheClaimHolderRecordsAMailsOutcome() throws {
        _ = try a.stored(["p"], email: .now, now: 1_000)
        let held = try a.answer { a.store.claimDueMail(node: "a1", now: 2_000, leaseMs: 60_000, limit: 10, completion: $0) }
        XCTAssertEqual(held.count, 1)
        // a1's lease lapsed mid-send: c claims the mail again.
        let again = try b.answer { b.store.claimDueMail(node: "c", now: 62_000, leaseMs: 60_000, limit: 10, completion: $0) }
        XCTAssertEqual(again.map(\.id), held.map(\.id))
        _ = try a.answer { a.store.finishMail(held[0].id, .failed("550 late"), node: "a1", now: 63_000, completion: $0) }
        XCTAssertEqual(try a.answer { a.store.outboxCounts(completion: $0) }, OutboxCounts(pending: 1, sent: 0, failed: 0, skipped: 0),
                       "a node that lost the claim records nothing")
        XCTAssertEqual(try b.answer { b.store.claimDueMail(node: "d", now: 63_000, leaseMs: 60_000, limit: 10, completion: $0) }, [],
                       "the claim is still c's")
        _ = try b.answer { b.store.finishMail(held[0].id, .sent, node: "c", now: 64_000, completion: $0) }
        XCTAssertEqual(try a.answer { a.store.outboxCounts(completion: $0) }, OutboxCounts(pending: 0, sent: 1, failed: 0, skipped: 0))
    }

    func aRunningFanOutIsClaimedByOneNodeAndTakenOverOnlyWhenItsLeaseLapses() throws {
        for id in ["a", "b", "c"] { try a.user(id) }
        guard case .fresh(let f) = try a.answer({ a.store.startFanout(NotificationContract.content, audience: "all", now: 1_000, claim: nil, completion: $0) }) else {
            return XCTFail("started")
        }
        XCTAssertEqual(try b.answer { b.store.claimUnfinishedFanouts(node: "b", now: 2_000, completion: $0) }, [f.id],
                       "unowned until its first step: a resume may take it (its node may have stopped before that step)")
        XCTAssertEqual(try a.answer { a.store.claimUnfinishedFanouts(node: "c", now: 3_000, completion: $0) }, [],
                       "b's lease is live")
        _ = try a.answer { a.store.fanoutStep(f.id, limit: 1, now: 50_000, emailDelayMs: 0, online: [], completion: $0) }
        let renewed = 50_000 + PostgresStore.fanoutLeaseMs
        XCTAssertEqual(try a.answer { a.store.claimUnfinishedFanouts(node: "c", now: renewed - 1, completion: $0) }, [],
                       "a step renews the lease")
        XCTAssertEqual(try a.answer { a.store.claimUnfinishedFanouts(node: "c", now: renewed, completion: $0) }, [f.id],
                       "no step for a whole lease: its node is gone, c takes it over")
        XCTAssertEqual(try b.answer { b.store.claimUnfinishedFanouts(node: "b", now: renewed + 1, completion: $0) }, [],
                       "now c holds it")
        XCTAssertEqual(try a.answer { a.store.claimUnfinishedFanouts(node: "c", now: renewed + 2, completion: $0) }, [f.id],
                       "its holder may claim it again (a restart with the same node id)")
    }

    func steppingOneFanOutFromTwoNodesAtOnceStoresEachUserOnce() throws {
        let users = (0..<200).map { "u\($0)" }
        for u in users { try a.user(u) }
        guard case .fresh(let f) = try a.answer({ a.store.startFanout(NotificationContract.content, audience: "client", now: 1, claim: nil, completion: $0) }) else {
            return XCTFail("started")
        }
        let stored = Locked<Int>(0)
        let group = DispatchGroup()
        for node in [a, b] {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while let step = try? node.answer({ node.store.fanoutStep(f.id, limit: 7, now: 2, emailDelayMs: 0, online: [], completion: $0) }) {
                    stored.withLock { $0 += step.stored }
                    if step.finished { return }
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(stored.withLock { $0 }, users.count, "each chunk stored by one of the nodes")
        for u in users.shuffled().prefix(20) {
            XCTAssertEqual(try a.page(u).items.count, 1, "\(u) got it once")
        }
        XCTAssertEqual(try a.answer { a.store.storedTotals(completion: $0) }.notifications, users.count)
    }

    func unreadCountsPushedFromTwoNodesNeverGoBack() throws {
        // Both nodes store notifications for one user at once; each node's answers, in its
        // completion order, must count up (a count made without the other's insert would
        // come after a higher one).
        try a.user("ann")
        let seen = Locked<[String: [Int]]>(["a": [], "b": []])
        let group = DispatchGroup()
        for (name, node) in [("a", a), ("b", b)] {
            for _ in 0..<50 {
                group.enter()
                node.store.createNotifications(NotificationContract.content, users: ["ann"], strict: false, now: 1, emailDelayMs: 0,
                                               claim: nil) { r in
                    if case .success(.fresh(.stored(let list, _))) = r, let n = list.first?.unread.total {
                        seen.withLock { $0[name, default: []].append(n) }
                    }
                    group.leave()
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        let counts = seen.withLock { $0 }
        XCTAssertEqual(((counts["a"] ?? []) + (counts["b"] ?? [])).sorted(), Array(1...100), "every count from 1 to 100 once")
        for (name, list) in counts {
            XCTAssertEqual(list, list.sorted(), "node \(name): counts in completion order only go up")
        }
    }

    func unreadCountsFromMessagesAndPostsNeverGoBack() throws {
        // Node a stores message notifications for ann (one conversation each, so each adds
        // one), node b posts notifications to her: both count under the same unread lock.
        try a.user("ann", "website_agent")
        let seen = Locked<[String: [Int]]>(["a": [], "b": []])
        let group = DispatchGroup()
        for i in 0..<50 {
            group.enter()
            let client = UserRecord(id: "c\(i)", role: "client", name: "C")
            let m = NewMessage(conversation: ConversationKey(service: "website", clientId: "c\(i)"), sender: client, text: "hi",
                               clientMsgId: nil, ts: 1)
            a.store.appendMessage(m, notify: ["ann"]) { r in
                if case .success(let appended) = r, let n = appended.notifications.first?.unread.total {
                    seen.withLock { $0["a", default: []].append(n) }
                }
                group.leave()
            }
            group.enter()
            b.store.createNotifications(NotificationContract.content, users: ["ann"], strict: false, now: 1, emailDelayMs: 0,
                                        claim: nil) { r in
                if case .success(.fresh(.stored(let list, _))) = r, let n = list.first?.unread.total {
                    seen.withLock { $0["b", default: []].append(n) }
                }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        let counts = seen.withLock { $0 }
        XCTAssertEqual(((counts["a"] ?? []) + (counts["b"] ?? [])).sorted(), Array(1...100), "every count from 1 to 100 once")
        for (name, list) in counts {
            XCTAssertEqual(list, list.sorted(), "node \(name): counts in completion order only go up")
        }
    }
}
