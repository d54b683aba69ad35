import Foundation
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// The webhook outbox, the same assertions on a real SQLite file and a real PostgreSQL:
// written with the message and only for a new one, claimed head-first per ordering key, leased
// to one node, retried and given up with the time passed in (no sleeping). XCTest on Linux runs
// no inherited tests, so each subclass names every check.
class WebhookStoreChecks: XCTestCase {
    func openStore() throws -> any Store & WebhookStore { throw XCTSkip("the checks run in the subclasses") }

    func wait<T: Sendable>(_ call: (@escaping StoreCompletion<T>) -> Void) throws -> T {
        let box = Locked<Result<T, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        call { r in box.withLock { $0 = r }; done.signal() }
        guard done.wait(timeout: .now() + 20) == .success, let r = box.withLock({ $0 }) else {
            throw StoreError.unavailable("timed out")
        }
        return try r.get()
    }

    let key = ConversationKey(service: "website", clientId: "ann")
    let t0: Int64 = 1_700_000_000_000

    func send(_ store: any Store, _ text: String, cmid: String? = nil) throws -> AppendResult {
        let m = NewMessage(conversation: key, sender: UserRecord(id: "ann", role: "client", name: "Ann"), text: text,
                           clientMsgId: cmid, ts: t0)
        return try wait { store.appendMessage(m, completion: $0) }
    }

    func enqueue(_ store: any WebhookStore, _ key: String, _ n: Int, at now: Int64? = nil) throws -> String {
        try wait { store.enqueueWebhook(.conversationStatus, orderingKey: key, now: now ?? t0, data: { w in
            w.key("n"); w.int(n)
        }, completion: $0) }
    }

    func claim(_ store: any WebhookStore, _ node: String = "a", at now: Int64, lease: Int64 = 60_000) throws -> [String] {
        try wait { store.claimDueWebhooks(node: node, now: now, leaseMs: lease, limit: 50, completion: $0) }.map(\.eventId)
    }

    func claimEvents(_ store: any WebhookStore, _ node: String = "a", at now: Int64) throws -> [WebhookEvent] {
        try wait { store.claimDueWebhooks(node: node, now: now, leaseMs: 60_000, limit: 50, completion: $0) }
    }

    func finish(_ store: any WebhookStore, _ e: WebhookEvent, _ outcome: WebhookOutcome, node: String = "a", at now: Int64) throws {
        try wait { store.finishWebhook(e, outcome, node: node, now: now, durationMs: 7, completion: $0) }
    }

    func checkADisabledOutboxWritesNothingWithAMessage() throws {
        let store = try openStore()
        _ = try send(store, "hello")
        XCTAssertEqual(try wait { store.pendingWebhookCount(completion: $0) }, 0, "no --webhook: no event rows")
        XCTAssertEqual(try claim(store, at: t0 + 1), [])
    }

    func checkANewMessageWritesOneMessageCreatedAndARetryNone() throws {
        let store = try openStore()
        // An agent serves the conversation, so ann's message queues nothing (no conversation.queued).
        _ = try wait { store.setAssignment(Assignment(conversation: key, agentId: "wes"), now: t0, completion: $0) }
        store.webhookOutbox.enable()
        let first = try send(store, "hello \"there\"", cmid: "c-1")
        let again = try send(store, "hello \"there\"", cmid: "c-1")
        XCTAssertTrue(again.duplicate)
        XCTAssertEqual(try wait { store.pendingWebhookCount(completion: $0) }, 1, "a duplicate retry writes no second event")
        let events = try claimEvents(store, at: t0)
        XCTAssertEqual(events.count, 1)
        let e = try XCTUnwrap(events.first)
        XCTAssertEqual(e.type, "message.created")
        XCTAssertEqual(e.orderingKey, "conv:website:ann")
        XCTAssertTrue(e.eventId.hasPrefix("evt_") && e.eventId.count == 28, e.eventId)
        let body = try JSONParser.parse(e.body)
        XCTAssertEqual(body["id"]?.stringValue, e.eventId)
        XCTAssertEqual(body["type"]?.stringValue, "message.created")
        XCTAssertEqual(body["ts"]?.intValue, t0)
        let data = try XCTUnwrap(body["data"])
        XCTAssertEqual(data["channel"]?.stringValue, "conv:website:ann")
        XCTAssertEqual(data["seq"]?.intValue, first.message.seq)
        XCTAssertEqual(data["msg_id"]?.intValue, first.message.msgId)
        XCTAssertEqual(data["from"]?["id"]?.stringValue, "ann")
        XCTAssertEqual(data["from"]?["role"]?.stringValue, "client")
        XCTAssertEqual(data["from"]?["name"]?.stringValue, "Ann")
        XCTAssertEqual(data["text"]?.stringValue, "hello \"there\"")
        XCTAssertEqual(data["client_msg_id"]?.stringValue, "c-1")
    }

    func checkOnlyTheHeadOfEachOrderingKeyIsClaimed() throws {
        let store = try openStore()
        let a1 = try enqueue(store, "conv:website:a", 1), a2 = try enqueue(store, "conv:website:a", 2)
        let b1 = try enqueue(store, "conv:website:b", 1)
        let n1 = try enqueue(store, "", 1), n2 = try enqueue(store, "", 2)
        let first = try claimEvents(store, at: t0)
        XCTAssertEqual(first.map(\.eventId), [a1, b1, n1, n2], "a2 waits for a1; unordered events all go")
        guard first.count == 4 else { return }
        let a1Event = first[0]
        try finish(store, a1Event, .retry(status: 500, error: nil, retryAt: t0 + 1_000), at: t0)
        for e in first.dropFirst() { try finish(store, e, .delivered(status: 200), at: t0) }
        XCTAssertEqual(try claim(store, at: t0 + 999), [], "a1 is not due yet and a2 stays behind it")
        let retried = try claimEvents(store, at: t0 + 1_000)
        XCTAssertEqual(retried.map(\.eventId), [a1])
        XCTAssertEqual(retried.first?.attempts, 1)
        guard retried.count == 1 else { return }
        try finish(store, retried[0], .delivered(status: 204), at: t0 + 1_000)
        XCTAssertEqual(try claim(store, at: t0 + 1_000), [a2], "a2 goes once a1 is delivered")
    }

    func checkALeaseKeepsOtherNodesOffUntilItLapses() throws {
        let store = try openStore()
        let e1 = try enqueue(store, "conv:website:a", 1)
        let taken = try wait { store.claimDueWebhooks(node: "a", now: t0, leaseMs: 1_000, limit: 10, completion: $0) }
        XCTAssertEqual(taken.map(\.eventId), [e1])
        XCTAssertEqual(try claim(store, "b", at: t0 + 999), [], "leased to a")
        XCTAssertEqual(try claim(store, "a", at: t0 + 500, lease: 1_000), [e1], "a node takes its own leased events again (a restart)")
        let takenOver = try wait { store.claimDueWebhooks(node: "b", now: t0 + 1_600, leaseMs: 1_000, limit: 10, completion: $0) }
        XCTAssertEqual(takenOver.map(\.eventId), [e1], "a lapsed lease is claimable")
        guard takenOver.count == 1 else { return }
        // a's late answer is recorded as an attempt but changes nothing: the event is b's.
        try finish(store, taken[0], .delivered(status: 200), node: "a", at: t0 + 1_700)
        XCTAssertEqual(try wait { store.pendingWebhookCount(completion: $0) }, 1)
        try finish(store, takenOver[0], .delivered(status: 200), node: "b", at: t0 + 1_800)
        XCTAssertEqual(try wait { store.pendingWebhookCount(completion: $0) }, 0)
    }

    func checkAnEventGivenUpAfterItsWindowReleasesItsKeyAndIsListed() throws {
        let store = try openStore()
        let policy = WebhookRetryPolicy()
        let e1 = try enqueue(store, "conv:website:a", 1), e2 = try enqueue(store, "conv:website:a", 2)
        var now = t0
        var attempts = 0
        while true {
            let claimed = try claimEvents(store, at: now)
            XCTAssertEqual(claimed.map(\.eventId), [e1], "e1 alone until it is given up (attempt \(attempts + 1))")
            guard let e = claimed.first else { break }
            attempts += 1
            let outcome = policy.afterFailure(attempt: attempts, createdAt: e.createdAt, now: now, status: nil, error: "refused")
            try finish(store, e, outcome, at: now)
            guard case .retry(_, _, let at) = outcome else { break }
            now = at
            XCTAssertLessThan(attempts, 100, "the backoff must reach 24 hours")
            if attempts >= 100 { return }
        }
        XCTAssertEqual(now, t0 + 86_400_000, "the last attempt is at the 24-hour mark")
        XCTAssertEqual(try claim(store, at: now), [e2], "a given-up event no longer holds its key")
        let listed = try wait { store.webhookDeliveries(limit: 3, completion: $0) }
        XCTAssertEqual(listed.count, 3)
        XCTAssertEqual(listed.map(\.attempt), [attempts, attempts - 1, attempts - 2], "newest first")
        XCTAssertEqual(listed.first?.state, .givenUp)
        XCTAssertEqual(listed.first?.error, "refused")
        XCTAssertNil(listed.first?.status)
        XCTAssertEqual(listed.first?.durationMs, 7)
        XCTAssertEqual(listed.first?.type, "conversation.status")
    }

    func checkFinishedEventsArePrunedAndTheirAttemptsStayListed() throws {
        let store = try openStore()
        let e1 = try enqueue(store, "", 1)
        let claimed = try claimEvents(store, at: t0)
        guard claimed.count == 1 else { return XCTFail("expected one event, got \(claimed)") }
        try finish(store, claimed[0], .delivered(status: 200), at: t0)
        store.pruneWebhooks(finishedBefore: t0 + 1)
        _ = try enqueue(store, "", 2) // behind the background prune in the writer's order
        let listed = try wait { store.webhookDeliveries(limit: 10, completion: $0) }
        XCTAssertEqual(listed.map(\.eventId), [e1])
        XCTAssertEqual(listed.first?.state, .delivered)
        XCTAssertEqual(try wait { store.pendingWebhookCount(completion: $0) }, 1)
    }
}

final class SQLiteWebhookStoreTests: WebhookStoreChecks {
    private var opened: [(SQLiteStore, String)] = []

    override func openStore() throws -> any Store & WebhookStore {
        let (store, dir) = try TestStores.sqlite()
        opened.append((store, dir))
        return store
    }

    override func tearDown() {
        for (store, dir) in opened { store.close(); try? FileManager.default.removeItem(atPath: dir) }
        opened = []
    }

    func testADisabledOutboxWritesNothingWithAMessage() throws { try checkADisabledOutboxWritesNothingWithAMessage() }
    func testANewMessageWritesOneMessageCreatedAndARetryNone() throws { try checkANewMessageWritesOneMessageCreatedAndARetryNone() }
    func testOnlyTheHeadOfEachOrderingKeyIsClaimed() throws { try checkOnlyTheHeadOfEachOrderingKeyIsClaimed() }
    func testARestartedHubUnderAnotherNodeIDTakesLeasedEventsAtOnce() throws {
        let store = try openStore()
        let e1 = try enqueue(store, "conv:website:a", 1)
        XCTAssertEqual(try claim(store, "killed", at: t0), [e1])
        XCTAssertEqual(try claim(store, "restarted", at: t0 + 1), [e1], "one process per SQLite file: no other node holds it")
    }
    func testAnEventGivenUpAfterItsWindowReleasesItsKeyAndIsListed() throws { try checkAnEventGivenUpAfterItsWindowReleasesItsKeyAndIsListed() }
    func testFinishedEventsArePrunedAndTheirAttemptsStayListed() throws { try checkFinishedEventsArePrunedAndTheirAttemptsStayListed() }
}

final class PostgresWebhookStoreTests: WebhookStoreChecks {
    private var opened: [(PostgresStore, TestPGSchema)] = []

    override func openStore() throws -> any Store & WebhookStore {
        let (store, schema) = try TestStores.postgres()
        opened.append((store, schema))
        return store
    }

    override func tearDown() {
        for (store, schema) in opened { store.close(); schema.drop() }
        opened = []
    }

    func testADisabledOutboxWritesNothingWithAMessage() throws { try checkADisabledOutboxWritesNothingWithAMessage() }
    func testANewMessageWritesOneMessageCreatedAndARetryNone() throws { try checkANewMessageWritesOneMessageCreatedAndARetryNone() }
    func testOnlyTheHeadOfEachOrderingKeyIsClaimed() throws { try checkOnlyTheHeadOfEachOrderingKeyIsClaimed() }
    func testALeaseKeepsOtherNodesOffUntilItLapses() throws { try checkALeaseKeepsOtherNodesOffUntilItLapses() }
    func testAnEventGivenUpAfterItsWindowReleasesItsKeyAndIsListed() throws { try checkAnEventGivenUpAfterItsWindowReleasesItsKeyAndIsListed() }
    func testFinishedEventsArePrunedAndTheirAttemptsStayListed() throws { try checkFinishedEventsArePrunedAndTheirAttemptsStayListed() }
}

// The backoff's numbers, as docs/hardening.md states them.
final class WebhookRetryPolicyTests: XCTestCase {
    let policy = WebhookRetryPolicy()

    func testTheDelayDoublesWithEqualJitterUpToAnHour() {
        func delay(_ attempt: Int, _ random: Double) -> Int64? {
            if case .retry(_, _, let at) = policy.afterFailure(attempt: attempt, createdAt: 0, now: 10, status: 500, error: nil,
                                                                random: random) { return at - 10 }
            return nil
        }
        XCTAssertEqual(delay(1, 0), 500)
        XCTAssertEqual(delay(1, 1), 1_000)
        XCTAssertEqual(delay(2, 1), 2_000)
        XCTAssertEqual(delay(5, 0.5), 12_000)
        XCTAssertEqual(delay(13, 1), 3_600_000, "capped at an hour")
        XCTAssertEqual(delay(60, 0), 1_800_000, "a huge attempt number neither overflows nor goes below half the cap")
    }

    func testTheLastRetryIsAtTheTwentyFourHourMarkThenTheEventIsGivenUp() {
        let created: Int64 = 1_000
        let late = policy.afterFailure(attempt: 30, createdAt: created, now: created + 86_000_000, status: nil, error: "x", random: 1)
        XCTAssertEqual(late, .retry(status: nil, error: "x", retryAt: created + 86_400_000))
        XCTAssertEqual(policy.afterFailure(attempt: 31, createdAt: created, now: created + 86_400_000, status: 503, error: nil),
                       .givenUp(status: 503, error: nil))
    }
}
