import Foundation
import Synchronization
import XCTest
import Core
import Notifications
@testable import Persistence
import Protocol

// The Store contract, the same assertions against every store: gap-free sequences under
// concurrent sends, completions on one thread in commit order, idempotent retries, paging,
// read marks, summaries, assignments, durability across reopen, failing jobs, message
// notifications. Each store runs it in its subclass
// (SQLiteStoreContractTests, PostgresStoreContractTests); what only one store has (WAL
// checkpoints, SQLSTATEs) is tested in its own class. The checks are not named test…: XCTest
// on Linux does not run inherited tests, so each subclass names every one (`contractTests`).
class StoreContractTests: XCTestCase {
    /// Opens the test's store: the same storage every time within one test.
    func openStore() throws -> any Store & NotificationStore { throw XCTSkip("the contract runs in the subclasses") }

    /// Runs a job that writes a user "half" and then fails; `done` after its answer.
    func runFailingJob(_ store: any Store, done: @escaping @Sendable () -> Void) {}

    /// The user's notifications, newest first, as "title|body".
    func notificationTexts(_ store: any Store & NotificationStore, user: String) throws -> [String] {
        try wait { store.notifications(for: user, NotificationQuery(limit: 10), completion: $0) }.items.map { "\($0.title)|\($0.body)" }
    }

    /// Runs an async store call and waits for its result.
    func wait<T: Sendable>(_ call: (@escaping StoreCompletion<T>) -> Void) throws -> T {
        let box = Locked<Result<T, StoreError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        call { r in box.withLock { $0 = r }; done.signal() }
        guard done.wait(timeout: .now() + 20) == .success, let r = box.withLock({ $0 }) else {
            throw StoreError.unavailable("timed out")
        }
        return try r.get()
    }

    let ann = UserRecord(id: "ann", role: "client", name: "Ann")
    let key = ConversationKey(service: "website", clientId: "ann")

    func send(_ store: any Store, _ text: String, from u: UserRecord? = nil, id: String? = nil) throws -> AppendResult {
        try wait { store.appendMessage(NewMessage(conversation: key, sender: u ?? ann, text: text, clientMsgId: id, ts: 1000), completion: $0) }
    }

    func statistic(_ store: any Store, _ jsonKey: String) -> Int? {
        store.statistics.entries.first { $0.jsonKey == jsonKey }?.value
    }

    func checkConcurrentSendsGetGapFreeSequencesInOneConversation() throws {
        let store = try openStore()
        defer { store.close() }
        let seqs = Locked<[Int64]>([])
        let group = DispatchGroup()
        for sender in 0..<20 {
            for i in 0..<50 {
                group.enter()
                let u = UserRecord(id: "u\(sender)", role: "client", name: "U")
                store.appendMessage(NewMessage(conversation: key, sender: u, text: "m\(i)", clientMsgId: "c\(i)", ts: 1)) { r in
                    if case .success(let a) = r { seqs.withLock { $0.append(a.message.seq) } }
                    group.leave()
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(seqs.withLock { $0.sorted() }, Array(1...1000), "1,000 acknowledged sends take seqs 1…1000 exactly once")
        XCTAssertEqual(statistic(store, "jobs"), 1000)
        let batches = statistic(store, "batches") ?? 0
        XCTAssertLessThan(batches, 1000, "group commit: several sends share a transaction (\(batches) batches)")
    }

    func checkRetriedSendReturnsTheFirstMessageAndStoresNothingNew() throws {
        let store = try openStore()
        defer { store.close() }
        let first = try send(store, "hello", id: "abc")
        let again = try send(store, "hello (retry)", id: "abc")
        XCTAssertFalse(first.duplicate)
        XCTAssertTrue(again.duplicate, "same sender and client_msg_id is a duplicate")
        XCTAssertEqual(again.message.seq, first.message.seq)
        XCTAssertEqual(again.message.text, "hello", "the first message is returned")
        XCTAssertEqual(try wait { store.lastSeq(key, completion: $0) }, 1, "nothing new stored")
        let other = UserRecord(id: "bob", role: "website_agent", name: "Bob")
        XCTAssertFalse(try send(store, "hi", from: other, id: "abc").duplicate, "client_msg_id is unique per sender only")
    }

    func checkHistoryPagesBackwardsAndSinceForwards() throws {
        let store = try openStore()
        defer { store.close() }
        for i in 1...25 { _ = try send(store, "m\(i)") }
        let newest = try wait { store.messages(key, before: nil, limit: 10, completion: $0) }
        XCTAssertEqual(newest.messages.map(\.seq), Array(16...25), "the newest page, ascending")
        XCTAssertTrue(newest.more)
        let older = try wait { store.messages(key, before: 16, limit: 10, completion: $0) }
        XCTAssertEqual(older.messages.map(\.seq), Array(6...15))
        let oldest = try wait { store.messages(key, before: 6, limit: 10, completion: $0) }
        XCTAssertEqual(oldest.messages.map(\.seq), Array(1...5))
        XCTAssertFalse(oldest.more, "nothing before seq 1")
        let since = try wait { store.messages(key, after: 20, limit: 100, completion: $0) }
        XCTAssertEqual(since.messages.map(\.seq), Array(21...25))
        XCTAssertFalse(since.more)
    }

    /// A subscribe's one read: last seq, read marks and the page after `since` come from one
    /// snapshot. Read while sends commit, a page that says no more ends exactly at the last seq
    /// it came with (two reads let a commit fall between them).
    func checkTheSubscribeReadIsOneSnapshotOfStateMarksAndPage() throws {
        let store = try openStore()
        defer { store.close() }
        let none = try wait { store.conversationState(key, messagesAfter: 0, limit: 10, completion: $0) }
        XCTAssertEqual(none, ConversationState(lastSeq: 0, readMarks: [:], page: MessagePage(messages: [], more: false)))
        let bob = UserRecord(id: "bob", role: "website_agent", name: "Bob")
        for i in 1...25 { _ = try send(store, "m\(i)", from: bob) }
        _ = try wait { store.markRead(user: "ann", key, seq: 7, now: 1, completion: $0) }
        let tail = try wait { store.conversationState(key, messagesAfter: 20, limit: 100, completion: $0) }
        XCTAssertEqual(tail.lastSeq, 25)
        XCTAssertEqual(tail.readMarks, ["ann": 7])
        XCTAssertEqual(tail.page.messages.map(\.seq), Array(21...25))
        XCTAssertFalse(tail.page.more)
        let first = try wait { store.conversationState(key, messagesAfter: 0, limit: 10, completion: $0) }
        XCTAssertEqual(first.page.messages.map(\.seq), Array(1...10))
        XCTAssertTrue(first.page.more, "a page of 10 out of 25")
        let bare = try wait { store.conversationState(key, messagesAfter: nil, limit: 10, completion: $0) }
        XCTAssertEqual(bare.page, MessagePage(messages: [], more: false), "no since: no page")
        XCTAssertEqual(bare.lastSeq, 25)

        // One send at a time, each after the last one's commit: the last seq moves between reads.
        let sends = 300
        let group = DispatchGroup()
        group.enter()
        Thread.detachNewThread { [key] in
            for i in 0..<sends {
                let committed = DispatchSemaphore(value: 0)
                store.appendMessage(NewMessage(conversation: key, sender: bob, text: "live \(i)", clientMsgId: nil, ts: 1)) { _ in committed.signal() }
                committed.wait()
            }
            group.leave()
        }
        var reads = 0, grew = Set<Int64>(), lastSeen: Int64 = 25
        while group.wait(timeout: .now()) == .timedOut || reads == 0 {
            let after = lastSeen - 10
            let state = try wait { store.conversationState(key, messagesAfter: after, limit: 10_000, completion: $0) }
            XCTAssertFalse(state.page.more)
            XCTAssertEqual(state.page.messages.last?.seq ?? after, state.lastSeq, "read \(reads): the page ends at the last seq read with it")
            grew.insert(state.lastSeq)
            lastSeen = state.lastSeq
            reads += 1
        }
        XCTAssertEqual(try wait { store.lastSeq(key, completion: $0) }, Int64(25 + sends))
        print("subscribe reads during \(sends) sends: \(reads), \(grew.count) different last seqs")
    }

    func checkReadMarkNeverMovesBackwardsNorPastTheLastMessage() throws {
        let store = try openStore()
        defer { store.close() }
        for i in 1...5 { _ = try send(store, "m\(i)", from: UserRecord(id: "bob", role: "website_agent", name: "Bob")) }
        XCTAssertEqual(try wait { store.markRead(user: "ann", key, seq: 3, now: 1, completion: $0) }.mark, 3)
        XCTAssertEqual(try wait { store.markRead(user: "ann", key, seq: 2, now: 1, completion: $0) }.mark, 3, "never backwards")
        XCTAssertEqual(try wait { store.markRead(user: "ann", key, seq: 99, now: 1, completion: $0) }.mark, 5, "capped at the last seq")
        let summary = try wait { store.conversations([key], for: "ann", withNotes: true, completion: $0) }
        XCTAssertEqual(summary.first?.unread, 0)
        XCTAssertEqual(summary.first?.lastMessage?.seq, 5)
    }

    func checkAssignmentsReplaceAndRemoveReportingTheAgent() throws {
        let store = try openStore()
        defer { store.close() }
        XCTAssertNil(try wait { store.setAssignment(Assignment(conversation: key, agentId: "wes"), now: 1, completion: $0) })
        XCTAssertEqual(try wait { store.setAssignment(Assignment(conversation: key, agentId: "wendy"), now: 2, completion: $0) }, "wes")
        XCTAssertEqual(try wait { store.allAssignments(completion: $0) }, [Assignment(conversation: key, agentId: "wendy")])
        XCTAssertEqual(try wait { store.removeAssignment(key, completion: $0) }, "wendy")
        XCTAssertNil(try wait { store.removeAssignment(key, completion: $0) }, "removing twice finds nothing")
    }

    func checkUsersAreUpsertedAndReadBack() throws {
        let store = try openStore()
        defer { store.close() }
        _ = try wait { store.upsertUser(UserRecord(id: "ann", role: "client", name: "Ann", services: ["website"]), now: 1, completion: $0) }
        _ = try wait { store.upsertUser(UserRecord(id: "ann", role: "client", name: "Ann B.", services: ["website", "courses"]), now: 2, completion: $0) }
        let u = try wait { store.user("ann", completion: $0) }
        XCTAssertEqual(u?.name, "Ann B.")
        XCTAssertEqual(u?.services, ["website", "courses"])
        XCTAssertNil(try wait { store.user("nobody", completion: $0) })
    }

    func checkAcknowledgedMessagesSurviveReopen() throws {
        var store: (any Store & NotificationStore)? = try openStore()
        for i in 1...10 { _ = try send(store!, "m\(i)", id: "k\(i)") }
        store?.close()
        store = nil
        let reopened = try openStore()
        defer { reopened.close() }
        let all = try wait { reopened.messages(key, after: 0, limit: 100, completion: $0) }
        XCTAssertEqual(all.messages.map(\.text), (1...10).map { "m\($0)" })
        XCTAssertEqual(try send(reopened, "m11").message.seq, 11, "the sequence continues after a restart")
    }

    func checkTextIsStoredExactlyIncludingEmptyQuotesAndUnicode() throws {
        let store = try openStore()
        defer { store.close() }
        let text = "it's \"quoted\"; DROP TABLE messages; -- 😀 \u{0}x \\0 \\"
        _ = try send(store, text)
        _ = try send(store, "")
        let page = try wait { store.messages(key, after: 0, limit: 2, completion: $0) }
        XCTAssertEqual(page.messages.first?.text, text, "bound, never spliced into SQL")
        XCTAssertEqual(page.messages.last?.text, "")
    }

    func checkAFailingJobLeavesNothingBehindAndItsBatchStillCommits() throws {
        let store = try openStore()
        defer { store.close() }
        let failing = DispatchSemaphore(value: 0)
        // One job writes, then fails: its write must not stay.
        runFailingJob(store) { failing.signal() }
        _ = try wait { store.upsertUser(UserRecord(id: "whole", role: "client", name: "W"), now: 1, completion: $0) }
        XCTAssertEqual(failing.wait(timeout: .now() + 20), .success)
        XCTAssertNil(try wait { store.user("half", completion: $0) }, "the failed job's insert was rolled back")
        XCTAssertNotNil(try wait { store.user("whole", completion: $0) }, "the other job of the batch committed")
    }

    // MARK: dedupe by ON CONFLICT

    func checkAReplayFromAnotherConversationReturnsTheFirstMessageAndCreatesNothing() throws {
        let store = try openStore()
        defer { store.close() }
        let first = try send(store, "hello", id: "abc")
        let elsewhere = ConversationKey(service: "marketing", clientId: "ann")
        let again = try wait {
            store.appendMessage(NewMessage(conversation: elsewhere, sender: ann, text: "hello", clientMsgId: "abc", ts: 2000), completion: $0)
        }
        XCTAssertTrue(again.duplicate, "(sender, client_msg_id) is unique across conversations")
        XCTAssertEqual(again.message, first.message, "the first message, in its own conversation (the bridge answers 409 for it)")
        XCTAssertEqual(try wait { store.lastSeq(elsewhere, completion: $0) }, 0, "nothing stored in the other conversation")
        XCTAssertEqual(try wait { store.allConversations(service: nil, completion: $0) }, [key],
                       "the conversation the duplicate named is not created")
        XCTAssertFalse(try wait {
            store.appendMessage(NewMessage(conversation: elsewhere, sender: ann, text: "new", clientMsgId: "abd", ts: 3000), completion: $0)
        }.duplicate, "a new client_msg_id is stored there")
        XCTAssertEqual(try wait { store.lastSeq(elsewhere, completion: $0) }, 1)
    }

    func checkAMessageNotificationCountsOnWhileUnreadAndStartsAgainAfterARead() throws {
        let store = try openStore()
        defer { store.close() }
        func note(_ text: String) throws -> NotificationRecord? {
            try wait {
                store.appendMessage(NewMessage(conversation: key, sender: ann, text: text, clientMsgId: nil, ts: 1000),
                                    notify: ["bob"], completion: $0)
            }.notifications.first?.record
        }
        let one = try note("a")
        let two = try note("b")
        XCTAssertEqual(one?.title, "New message from Ann")
        XCTAssertEqual(two?.title, "2 new messages from Ann", "unread: counted on")
        XCTAssertEqual(two?.id, one?.id, "one row per user and conversation")
        XCTAssertEqual(two?.data, #"{"channel":"conv:website:ann","seq":2,"count":2}"#)
        let read = try wait { store.markRead(user: "bob", key, seq: 2, now: 2000, completion: $0) }
        XCTAssertEqual(read.clearedUnread, UnreadCounts(byService: [:]), "reading cleared the notification")
        let three = try note("c")
        XCTAssertEqual(three?.title, "New message from Ann", "after a read: starts at 1 again")
        XCTAssertEqual(three?.id, one?.id)
        XCTAssertEqual(three?.read, false)
        XCTAssertEqual(try notificationTexts(store, user: "bob"), ["New message from Ann|c"], "still one row")
        XCTAssertEqual(try wait { store.storedTotals(completion: $0) }, StoredTotals(messages: 3, notifications: 1),
                       "an update in place is not counted as a new row")
    }

    func checkAReplyMovesTheSendersReadMarkPastWhatCameBefore() throws {
        let store = try openStore()
        defer { store.close() }
        let bob = UserRecord(id: "bob", role: "website_agent", name: "Bob")
        _ = try send(store, "q1", from: bob)
        _ = try send(store, "q2", from: bob)
        let reply = try send(store, "answer")
        XCTAssertEqual(reply.senderRead?.mark, 3, "the reply read what came before")
        XCTAssertNil(try send(store, "more").senderRead, "a send after one's own moves nothing")
        let state = try wait { store.conversationState(key, messagesAfter: nil, limit: 0, completion: $0) }
        XCTAssertEqual(state.lastSeq, 4)
        XCTAssertEqual(state.readMarks["ann"], 3)
        let summary = try wait { store.conversations([key], for: "bob", withNotes: true, completion: $0) }
        XCTAssertEqual(summary.first?.unread, 2, "bob has not read ann's two")
    }

    func checkSummariesNameTheClientAndTheAgents() throws {
        let store = try openStore()
        defer { store.close() }
        _ = try wait { store.upsertUser(ann, now: 1, completion: $0) }
        _ = try wait { store.upsertUser(UserRecord(id: "wes", role: "website_agent", name: "Wes"), now: 1, completion: $0) }
        _ = try wait { store.setAssignment(Assignment(conversation: key, agentId: "wes"), now: 1, completion: $0) }
        let empty = ConversationKey(service: "courses", clientId: "ann")
        let summaries = try wait { store.conversations([key, empty], for: "wes", withNotes: true, completion: $0) }
        XCTAssertEqual(summaries.map(\.conversation), [key, empty], "in the order asked")
        XCTAssertEqual(summaries.first?.agents, ["wes"])
        XCTAssertEqual(summaries.first?.names, ["ann": "Ann", "wes": "Wes"])
        XCTAssertNil(summaries.first?.lastMessage, "no message yet")
        XCTAssertEqual(summaries.last?.names, ["ann": "Ann"])
        _ = try send(store, "hi")
        _ = try send(store, "there")
        let after = try wait { store.conversations([key], for: "wes", withNotes: true, completion: $0) }
        XCTAssertEqual(after.first?.lastMessage?.text, "there")
        XCTAssertEqual(after.first?.unread, 2)
        XCTAssertEqual(try wait { store.conversations([key], for: "ann", withNotes: true, completion: $0) }.first?.unread, 0, "own messages never count")
        XCTAssertEqual(try wait { store.allConversations(service: "website", completion: $0) }, [key])
        XCTAssertEqual(try wait { store.allConversations(service: "courses", completion: $0) }, [], "asking about one creates nothing")
    }

    func checkSummariesOfManyConversationsComeInTheOrderAsked() throws {
        let store = try openStore()
        defer { store.close() }
        let keys = (0..<30).map { ConversationKey(service: "website", clientId: "c\($0)") }
        for (i, k) in keys.enumerated() where i % 3 == 0 {
            let u = UserRecord(id: k.clientId, role: "client", name: "C\(i)")
            _ = try wait { store.upsertUser(u, now: 1, completion: $0) }
            for n in 0..<(i % 4 + 1) {
                _ = try wait { store.appendMessage(NewMessage(conversation: k, sender: u, text: "m\(n)", clientMsgId: nil, ts: 1), completion: $0) }
            }
        }
        let asked = keys.reversed() + [keys[0]]
        let summaries = try wait { store.conversations(asked, for: "wes", withNotes: true, completion: $0) }
        XCTAssertEqual(summaries.map(\.conversation), asked, "in the order asked, a key asked twice answered twice")
        for s in summaries {
            let i = Int(s.conversation.clientId.dropFirst())!
            XCTAssertEqual(s.unread, i % 3 == 0 ? i % 4 + 1 : 0, "\(s.conversation)")
            XCTAssertEqual(s.lastMessage?.text, i % 3 == 0 ? "m\(i % 4)" : nil, "\(s.conversation)")
            XCTAssertEqual(s.names, i % 3 == 0 ? [s.conversation.clientId: "C\(i)"] : [:], "\(s.conversation)")
        }
        XCTAssertEqual(try wait { store.conversations([], for: "wes", withNotes: true, completion: $0) }, [])
    }

    func checkLastSeqsAnswerEveryKeyWithZeroForAbsentOnes() throws {
        let store = try openStore()
        defer { store.close() }
        let other = ConversationKey(service: "courses", clientId: "ann")
        let absent = ConversationKey(service: "website", clientId: "nobody")
        for _ in 0..<3 { _ = try send(store, "m") }
        _ = try wait { store.appendMessage(NewMessage(conversation: other, sender: ann, text: "x", clientMsgId: nil, ts: 1), completion: $0) }
        let seqs = try wait { store.lastSeqs([key, other, absent, key], completion: $0) }
        XCTAssertEqual(seqs, [key: 3, other: 1, absent: 0])
        XCTAssertEqual(try wait { store.lastSeqs([], completion: $0) }, [:])
        let many = (0..<2_500).map { ConversationKey(service: "website", clientId: "k\($0)") } + [key]
        let manySeqs = try wait { store.lastSeqs(many, completion: $0) }
        XCTAssertEqual(manySeqs.count, many.count, "more keys than one statement takes are all answered")
        XCTAssertEqual(manySeqs[key], 3)
        XCTAssertEqual(Set(manySeqs.values), [0, 3])
        XCTAssertEqual(try wait { store.allConversations(service: "website", completion: $0) }, [key], "asking creates nothing")
    }

    func checkCompletionsRunOnOneThreadInCommitOrder() throws {
        let store = try openStore()
        defer { store.close() }
        let seen = Locked<(threads: Set<UInt>, order: [String: [Int64]])>(([], [:]))
        let group = DispatchGroup()
        let conversations = (0..<20).map { ConversationKey(service: "website", clientId: "c\($0)") }
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in 0..<500 {
                group.enter()
                let k = conversations[(i * 7 + t) % conversations.count]
                let sender = UserRecord(id: "s\(t)", role: "client", name: "S")
                store.appendMessage(NewMessage(conversation: k, sender: sender, text: "m", clientMsgId: nil, ts: 1)) { r in
                    let id = UInt(pthread_self())
                    seen.withLock {
                        $0.threads.insert(id)
                        if case .success(let a) = r { $0.order[a.message.conversation.clientId, default: []].append(a.message.seq) }
                    }
                    group.leave()
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        let (threads, order) = seen.withLock { $0 }
        XCTAssertEqual(threads.count, 1, "every write completion ran on one thread")
        XCTAssertEqual(order.values.map(\.count).reduce(0, +), 2000)
        for (conversation, seqs) in order {
            XCTAssertEqual(seqs, Array(1...Int64(seqs.count)), "\(conversation): completions in seq (commit) order")
        }
    }
}

final class SQLiteStoreContractTests: StoreContractTests {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "store-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testConcurrentSendsGetGapFreeSequencesInOneConversation() throws { try checkConcurrentSendsGetGapFreeSequencesInOneConversation() }
    func testRetriedSendReturnsTheFirstMessageAndStoresNothingNew() throws { try checkRetriedSendReturnsTheFirstMessageAndStoresNothingNew() }
    func testHistoryPagesBackwardsAndSinceForwards() throws { try checkHistoryPagesBackwardsAndSinceForwards() }
    func testTheSubscribeReadIsOneSnapshotOfStateMarksAndPage() throws { try checkTheSubscribeReadIsOneSnapshotOfStateMarksAndPage() }
    func testReadMarkNeverMovesBackwardsNorPastTheLastMessage() throws { try checkReadMarkNeverMovesBackwardsNorPastTheLastMessage() }
    func testAssignmentsReplaceAndRemoveReportingTheAgent() throws { try checkAssignmentsReplaceAndRemoveReportingTheAgent() }
    func testUsersAreUpsertedAndReadBack() throws { try checkUsersAreUpsertedAndReadBack() }
    func testAcknowledgedMessagesSurviveReopen() throws { try checkAcknowledgedMessagesSurviveReopen() }
    func testTextIsStoredExactlyIncludingEmptyQuotesAndUnicode() throws { try checkTextIsStoredExactlyIncludingEmptyQuotesAndUnicode() }
    func testAFailingJobLeavesNothingBehindAndItsBatchStillCommits() throws { try checkAFailingJobLeavesNothingBehindAndItsBatchStillCommits() }
    func testAReplayFromAnotherConversationReturnsTheFirstMessageAndCreatesNothing() throws { try checkAReplayFromAnotherConversationReturnsTheFirstMessageAndCreatesNothing() }
    func testAMessageNotificationCountsOnWhileUnreadAndStartsAgainAfterARead() throws { try checkAMessageNotificationCountsOnWhileUnreadAndStartsAgainAfterARead() }
    func testAReplyMovesTheSendersReadMarkPastWhatCameBefore() throws { try checkAReplyMovesTheSendersReadMarkPastWhatCameBefore() }
    func testCompletionsRunOnOneThreadInCommitOrder() throws { try checkCompletionsRunOnOneThreadInCommitOrder() }
    func testSummariesNameTheClientAndTheAgents() throws { try checkSummariesNameTheClientAndTheAgents() }

    func testSummariesOfManyConversationsComeInTheOrderAsked() throws { try checkSummariesOfManyConversationsComeInTheOrderAsked() }
    func testLastSeqsAnswerEveryKeyWithZeroForAbsentOnes() throws { try checkLastSeqsAnswerEveryKeyWithZeroForAbsentOnes() }
    func testStatusIsSetListedAndReopenedByTheClient() throws { try checkStatusIsSetListedAndReopenedByTheClient() }
    func testAClientMessageQueuesAConversationNoAgentServesAndAnAssignmentTakesItOut() throws { try checkAClientMessageQueuesAConversationNoAgentServesAndAnAssignmentTakesItOut() }
    func testClaimsLetExactlyOneAgentWin() throws { try checkClaimsLetExactlyOneAgentWin() }
    func testNotesAreStoredMarkedAndLeftOutOfAClientsSummary() throws { try checkNotesAreStoredMarkedAndLeftOutOfAClientsSummary() }
    func testDeskEventsGiveTheReportItsCyclesAndQueue() throws { try checkDeskEventsGiveTheReportItsCyclesAndQueue() }
    func testAnEditKeepsTheOldTextInItsHistoryAndFollowsTheRules() throws { try checkAnEditKeepsTheOldTextInItsHistoryAndFollowsTheRules() }
    func testADeleteLeavesATombstoneAndErasesTextAttachmentsAndHistory() throws { try checkADeleteLeavesATombstoneAndErasesTextAttachmentsAndHistory() }
    func testAnEditRewritesTheNotificationThatQuotedTheMessage() throws { try checkAnEditRewritesTheNotificationThatQuotedTheMessage() }
    func testAClientNeverReachesANoteByEditOrDelete() throws { try checkAClientNeverReachesANoteByEditOrDelete() }
    func testAMessageTakesABoundedNumberOfEdits() throws { try checkAMessageTakesABoundedNumberOfEdits() }

    /// Search merges (jobs of the writer's own, tested by SQLiteStoreSearchContractTests) start
    /// only when asked: the contract counts the writer's jobs, one per send.
    override func openStore() throws -> any Store & NotificationStore {
        let store = try SQLiteStore(path: dir + "/hub.sqlite", now: 1, messageWording: MessageNotificationText.wording)
        store.searchMerger.pause()
        return store
    }

    override func runFailingJob(_ store: any Store, done: @escaping @Sendable () -> Void) {
        (store as? SQLiteStore)?.write({ db -> Int in
            try db.statement("INSERT INTO users (id, role, name, created_at, updated_at) VALUES ('half', 'client', 'H', 1, 1)").run()
            throw StoreError.conflict("fails after writing")
        }, { (_: Result<Int, StoreError>) in done() })
    }
}

final class PostgresStoreContractTests: StoreContractTests {
    var schema: TestPGSchema!

    override func setUpWithError() throws { schema = try TestPGSchema() }
    override func tearDown() { schema?.drop() }

    func testConcurrentSendsGetGapFreeSequencesInOneConversation() throws { try checkConcurrentSendsGetGapFreeSequencesInOneConversation() }
    func testRetriedSendReturnsTheFirstMessageAndStoresNothingNew() throws { try checkRetriedSendReturnsTheFirstMessageAndStoresNothingNew() }
    func testHistoryPagesBackwardsAndSinceForwards() throws { try checkHistoryPagesBackwardsAndSinceForwards() }
    func testTheSubscribeReadIsOneSnapshotOfStateMarksAndPage() throws { try checkTheSubscribeReadIsOneSnapshotOfStateMarksAndPage() }
    func testReadMarkNeverMovesBackwardsNorPastTheLastMessage() throws { try checkReadMarkNeverMovesBackwardsNorPastTheLastMessage() }
    func testAssignmentsReplaceAndRemoveReportingTheAgent() throws { try checkAssignmentsReplaceAndRemoveReportingTheAgent() }
    func testUsersAreUpsertedAndReadBack() throws { try checkUsersAreUpsertedAndReadBack() }
    func testAcknowledgedMessagesSurviveReopen() throws { try checkAcknowledgedMessagesSurviveReopen() }
    func testTextIsStoredExactlyIncludingEmptyQuotesAndUnicode() throws { try checkTextIsStoredExactlyIncludingEmptyQuotesAndUnicode() }
    func testAFailingJobLeavesNothingBehindAndItsBatchStillCommits() throws { try checkAFailingJobLeavesNothingBehindAndItsBatchStillCommits() }
    func testAReplayFromAnotherConversationReturnsTheFirstMessageAndCreatesNothing() throws { try checkAReplayFromAnotherConversationReturnsTheFirstMessageAndCreatesNothing() }
    func testAMessageNotificationCountsOnWhileUnreadAndStartsAgainAfterARead() throws { try checkAMessageNotificationCountsOnWhileUnreadAndStartsAgainAfterARead() }
    func testAReplyMovesTheSendersReadMarkPastWhatCameBefore() throws { try checkAReplyMovesTheSendersReadMarkPastWhatCameBefore() }
    func testCompletionsRunOnOneThreadInCommitOrder() throws { try checkCompletionsRunOnOneThreadInCommitOrder() }
    func testSummariesNameTheClientAndTheAgents() throws { try checkSummariesNameTheClientAndTheAgents() }

    func testSummariesOfManyConversationsComeInTheOrderAsked() throws { try checkSummariesOfManyConversationsComeInTheOrderAsked() }
    func testLastSeqsAnswerEveryKeyWithZeroForAbsentOnes() throws { try checkLastSeqsAnswerEveryKeyWithZeroForAbsentOnes() }
    func testStatusIsSetListedAndReopenedByTheClient() throws { try checkStatusIsSetListedAndReopenedByTheClient() }
    func testAClientMessageQueuesAConversationNoAgentServesAndAnAssignmentTakesItOut() throws { try checkAClientMessageQueuesAConversationNoAgentServesAndAnAssignmentTakesItOut() }
    func testClaimsLetExactlyOneAgentWin() throws { try checkClaimsLetExactlyOneAgentWin() }
    func testNotesAreStoredMarkedAndLeftOutOfAClientsSummary() throws { try checkNotesAreStoredMarkedAndLeftOutOfAClientsSummary() }
    func testDeskEventsGiveTheReportItsCyclesAndQueue() throws { try checkDeskEventsGiveTheReportItsCyclesAndQueue() }
    func testAnEditKeepsTheOldTextInItsHistoryAndFollowsTheRules() throws { try checkAnEditKeepsTheOldTextInItsHistoryAndFollowsTheRules() }
    func testADeleteLeavesATombstoneAndErasesTextAttachmentsAndHistory() throws { try checkADeleteLeavesATombstoneAndErasesTextAttachmentsAndHistory() }
    func testAnEditRewritesTheNotificationThatQuotedTheMessage() throws { try checkAnEditRewritesTheNotificationThatQuotedTheMessage() }
    func testAClientNeverReachesANoteByEditOrDelete() throws { try checkAClientNeverReachesANoteByEditOrDelete() }
    func testAMessageTakesABoundedNumberOfEdits() throws { try checkAMessageTakesABoundedNumberOfEdits() }

    override func openStore() throws -> any Store & NotificationStore {
        try PostgresStore(url: schema.url, now: 1, messageWording: MessageNotificationText.wording)
    }

    override func runFailingJob(_ store: any Store, done: @escaping @Sendable () -> Void) {
        (store as? PostgresStore)?.write({ db -> Int in
            _ = try db.query("INSERT INTO users (id, role, name, created_at, updated_at) VALUES ('half', 'client', 'H', 1, 1)")
            throw StoreError.conflict("fails after writing")
        }, completion: { (_: Result<Int, StoreError>) in done() })
    }
}
