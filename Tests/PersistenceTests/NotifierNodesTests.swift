import Foundation
import XCTest
import Core
import Metrics
import Notifications
@testable import Persistence
import Protocol

// Notifiers on PostgresStores sharing one schema (nodes): two resuming the same unfinished
// fan-out at once and again while it runs (one takes it and keeps it, every user gets it
// once), and one taking over the fan-out of a node that died once its lease lapses.
final class NotifierNodesTests: XCTestCase {
    private var made: (store: PostgresStore, schema: TestPGSchema)!
    private var second: PostgresStore?

    override func setUpWithError() throws { made = try TestStores.postgres() }
    override func tearDown() {
        second?.close()
        made?.store.close()
        made?.schema.drop()
    }

    /// The hub as a Notifier sees it: everyone online; pushes counted per user.
    private final class CountingLive: LiveNotifications {
        let notified = Locked<[String: Int]>([:])
        func isOnline(_ user: String) -> Bool { true }
        func notify(_ n: DeliveredNotification) { notified.withLock { $0[n.userId, default: 0] += 1 } }
        func pushUnread(_ unread: UnreadCounts, to user: String) {}
        func broadcast(_ record: NotificationRecord) {}
    }

    func testTwoNodesResumingOneAbandonedFanOutRunItOnce() throws {
        let a = NotificationContract(store: made.store, name: "node a")
        let storeB = try PostgresStore(url: made.schema.url, now: 1, messageWording: MessageNotificationText.wording)
        second = storeB
        let users = (0..<300).map { "u\($0)" }
        for u in users { try a.user(u) }
        // Started by a node that died: its lease lapsed long ago.
        let long = wallMillis() - 10 * PostgresStore.fanoutLeaseMs
        guard case .fresh(let f) = try a.answer({ made.store.startFanout(NotificationContract.content, audience: "client", now: long,
                                                                           claim: nil, completion: $0) }) else {
            return XCTFail("started")
        }
        let lives = [CountingLive(), CountingLive()]
        let everyone = Set(users)
        let notifiers = zip([made.store as NotificationStore, storeB], zip(lives, ["a", "b"])).map { store, pair in
            Notifier(store: store, live: pair.0, onlineUsers: { everyone }, metrics: HubMetrics(), emailDelayMs: 0,
                     chunkSize: 10, node: pair.1)
        }
        // Both at once, then both again and again while it runs (as a periodic resume would).
        DispatchQueue.concurrentPerform(iterations: 2) { notifiers[$0].resumeUnfinished() }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, try a.answer({ made.store.unfinishedFanouts(completion: $0) }).contains(f.id) {
            notifiers.forEach { $0.resumeUnfinished() }
            Thread.sleep(forTimeInterval: 0.005)
        }
        XCTAssertEqual(try a.answer { made.store.unfinishedFanouts(completion: $0) }, [], "finished within 20 s")
        Thread.sleep(forTimeInterval: 0.2) // a second run, if there were one, would push on
        let counts = lives.map { $0.notified.withLock { $0 } }
        XCTAssertEqual(counts.filter { !$0.isEmpty }.count, 1, "one node ran it (pushes per node: \(counts.map(\.count)))")
        var total: [String: Int] = [:]
        for c in counts { total.merge(c, uniquingKeysWith: +) }
        XCTAssertEqual(total.count, users.count, "every user pushed")
        XCTAssertEqual(Set(total.values), [1], "each once")
        XCTAssertEqual(try a.answer { made.store.storedTotals(completion: $0) }.notifications, users.count, "each stored once")
    }

    func testAFanOutWhoseNodeDiedIsTakenOverWhenItsLeaseLapses() throws {
        let a = NotificationContract(store: made.store, name: "node a")
        let storeB = try PostgresStore(url: made.schema.url, now: 1, messageWording: MessageNotificationText.wording)
        second = storeB
        let users = (0..<40).map { "u\($0)" }
        for u in users { try a.user(u) }
        // Node a started it and died at once: its lease lapses 300 ms from now.
        let startedAt = wallMillis() - PostgresStore.fanoutLeaseMs + 300
        guard case .fresh(let f) = try a.answer({ made.store.startFanout(NotificationContract.content, audience: "client", now: startedAt,
                                                                           claim: nil, completion: $0) }) else {
            return XCTFail("started")
        }
        let live = CountingLive()
        let everyone = Set(users)
        let b = Notifier(store: storeB, live: live, onlineUsers: { everyone }, metrics: HubMetrics(), emailDelayMs: 0,
                         chunkSize: 10, node: "b")
        b.keepResuming(everyMs: 50)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, try a.answer({ made.store.unfinishedFanouts(completion: $0) }).contains(f.id) {
            Thread.sleep(forTimeInterval: 0.02)
        }
        XCTAssertEqual(try a.answer { made.store.unfinishedFanouts(completion: $0) }, [], "b finished it within 10 s")
        XCTAssertEqual(live.notified.withLock { $0 }, Dictionary(uniqueKeysWithValues: users.map { ($0, 1) }), "each user once, from b")
    }
}
