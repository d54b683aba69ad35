import Core
import Foundation
import Notifications
import Persistence
import Protocol
import XCTest
@testable import Hub

// A node's position in a conversation's stream, without sockets, a store or a bus: messages
// from this node's commits and other nodes' arrive interleaved and sometimes lost; the node's
// subscribers must see them in seq order, each once, with one store read per gap for the node.
final class StreamCursorTests: XCTestCase {
    private func message(_ seq: Int64) -> Publication {
        Publication(channel: "conv:website:u1", frame: Bytes.frame(.text, Array("{\"seq\":\(seq)}".utf8)), seq: seq)
    }

    /// A simulated node: offers publications, runs timers and store reads when told, and
    /// records what its Router would have been handed.
    private struct Node {
        var cursor = StreamCursor()
        var delivered: [Int64] = []
        var timerArmed = false
        var fetches: [Int64] = []
        /// The store: every committed seq.
        var stored: Int64 = 0

        mutating func offer(_ seq: Int64) {
            let p = Publication(channel: "c", frame: Bytes.frame(.text, Array("{}".utf8)), seq: seq)
            switch cursor.offer(p, seq: seq) {
            case .deliver:
                delivered.append(seq)
                release()
            case .drop, .hold: break
            case .holdAndWait: timerArmed = true
            }
        }
        mutating func release() { while let p = cursor.nextHeld() { delivered.append(p.seq ?? -1) } }
        /// The store's last seq is read (and is `last`): the cursor starts there.
        mutating func start(_ last: Int64) {
            stored = max(stored, last)
            if case .fetch(let after) = cursor.start(lastSeq: last) { fetch(after: after) }
        }
        mutating func fireTimer() {
            timerArmed = false
            if case .fetch(let after) = cursor.gapTimerFired() { fetch(after: after) }
        }
        mutating func check() {
            if case .fetch(let after) = cursor.check(storeLastSeq: stored) { fetch(after: after) }
        }
        /// Reads pages of 2 from the store until caught up.
        mutating func fetch(after: Int64) {
            fetches.append(after)
            var from = after
            while true {
                let page = Array(stride(from: from + 1, through: min(from + 2, stored), by: 1))
                for seq in page where cursor.fetched(seq: seq) { delivered.append(seq) }
                switch cursor.pageDone(more: (page.last ?? from) < stored) {
                case .fetch(let next): from = next; continue
                case .done:
                    release()
                    if cursor.afterRelease() { timerArmed = true }
                    return
                }
            }
        }
    }

    func testInOrderMessagesGoStraightThrough() {
        var n = Node()
        n.start(0)
        for seq in Int64(1)...5 { n.offer(seq) }
        XCTAssertEqual(n.delivered, [1, 2, 3, 4, 5])
        XCTAssertFalse(n.timerArmed)
        XCTAssertEqual(n.cursor.position, 5)
    }

    func testAnOvertakenMessageIsWaitedForAndTheRestReleasedInOrder() {
        var n = Node()
        n.start(10)
        n.offer(11); n.offer(13); n.offer(14)
        XCTAssertEqual(n.delivered, [10, 11], "the start delivers the last stored message again")
        XCTAssertTrue(n.timerArmed, "a gap arms the timer once")
        n.offer(12) // arrives within the wait
        XCTAssertEqual(n.delivered, [10, 11, 12, 13, 14])
        n.fireTimer()
        XCTAssertEqual(n.fetches, [9], "the gap closed before the timer: no store read but the start's")
    }

    func testALostMessageIsReadFromTheStoreOnceForTheNode() {
        var n = Node()
        n.start(0)
        n.stored = 6
        n.offer(1); n.offer(2); n.offer(4); n.offer(5); n.offer(6) // 3 lost on the bus
        XCTAssertEqual(n.delivered, [1, 2])
        n.fireTimer()
        XCTAssertEqual(n.fetches, [2], "one read, from the position")
        XCTAssertEqual(n.delivered, [1, 2, 3, 4, 5, 6], "the store's copies, then nothing twice")
        n.offer(5); n.offer(7)
        XCTAssertEqual(n.delivered, [1, 2, 3, 4, 5, 6, 7])
    }

    func testLiveMessagesDuringAFetchWaitAndDuplicatesAreDropped() {
        var n = Node()
        n.start(0)
        n.offer(1); n.offer(3)
        XCTAssertEqual(n.cursor.gapTimerFired(), .fetch(after: 1))
        // While the read is out: 2 arrives live (held, the read brings it too), 4 arrives.
        n.offer(2); n.offer(4)
        XCTAssertEqual(n.delivered, [1], "nothing overtakes a fetch in flight")
        XCTAssertTrue(n.cursor.fetched(seq: 2))
        XCTAssertTrue(n.cursor.fetched(seq: 3))
        XCTAssertEqual(n.cursor.pageDone(more: false), .done)
        var released: [Int64] = []
        while let p = n.cursor.nextHeld() { released.append(p.seq ?? -1) }
        XCTAssertEqual(released, [4], "3 came from the store; 2 and 3 held copies dropped")
        XCTAssertEqual(n.cursor.position, 4)
        XCTAssertTrue(n.cursor.held.isEmpty)
    }

    func testALostLastMessageIsFoundByTheCheck() {
        var n = Node()
        n.start(0)
        n.stored = 3
        n.offer(1); n.offer(2) // 3 lost, and nothing after it shows the gap
        XCTAssertFalse(n.timerArmed)
        n.check()
        XCTAssertEqual(n.delivered, [1, 2, 3])
        n.check()
        XCTAssertEqual(n.fetches, [2], "an up-to-date position reads nothing more")
    }

    func testBeforeTheStartEverythingPassesThroughAndThePositionNeverGoesBack() {
        var n = Node()
        n.offer(7); n.offer(5)
        XCTAssertEqual(n.delivered, [7, 5], "passed through: each subscriber's own rule orders this window")
        XCTAssertEqual(n.cursor.start(lastSeq: 6), .upToDate)
        XCTAssertEqual(n.cursor.position, 7, "not below what already went out")
        n.offer(7); n.offer(8)
        XCTAssertEqual(n.delivered, [7, 5, 8])
    }

    func testAGapStillOpenAfterAReleaseIsWaitedForAgain() {
        var n = Node()
        n.start(0)
        n.stored = 2
        n.offer(1); n.offer(3); n.offer(6) // the store has only up to 2 when read; 4 and 5 still on their way
        n.fireTimer()
        XCTAssertEqual(n.delivered, [1, 2, 3])
        XCTAssertTrue(n.timerArmed, "6 is still held behind a gap: wait again")
        n.stored = 6
        n.offer(4); n.offer(5)
        XCTAssertEqual(n.delivered, [1, 2, 3, 4, 5, 6])
    }

    // A node's first subscriber of a conversation reads the stream (last_seq 4) and registers;
    // another node commits 5 and 6 and publishes them before this node's bus subscription is
    // active, so the bus never brings them; the node's own read of the last seq comes after, and
    // says 6. With nothing more sent, only the start shows the subscriber what it lacks.
    func testTheStartDeliversTheLastStoredMessageAgainSoAnEarlierReaderSeesItsGap() {
        var subscriber = SubscriptionDelivery(ready: false)
        XCTAssertEqual(subscriber.onSubscribed(since: nil, lastSeq: 4, pageLast: nil, more: false), .release)
        XCTAssertTrue(subscriber.release().isEmpty)
        var n = Node()
        n.stored = 6
        n.start(6)
        XCTAssertEqual(n.fetches, [5], "one read: the last message")
        XCTAssertEqual(n.delivered, [6])
        XCTAssertEqual(n.cursor.position, 6)
        XCTAssertEqual(subscriber.onLive(message(6), maxHeld: 100), .holdAndFetch(after: 4),
                       "the subscriber fetches 5 and 6 itself")
        var upToDate = SubscriptionDelivery(ready: false)
        _ = upToDate.onSubscribed(since: nil, lastSeq: 6, pageLast: nil, more: false)
        _ = upToDate.release()
        XCTAssertEqual(upToDate.onLive(message(6), maxHeld: 100), .skipDuplicate, "one who read 6 drops it")
        n.offer(7)
        XCTAssertEqual(n.delivered, [6, 7])
    }

    func testAnEmptyStreamStartsWithNoRead() {
        var n = Node()
        n.start(0)
        XCTAssertEqual(n.fetches, [])
        XCTAssertEqual(n.cursor.position, 0)
    }

    func testHeldPublicationsAreBounded() {
        var c = StreamCursor()
        _ = c.start(lastSeq: 0)
        for seq in Int64(2)...Int64(StreamCursor.maxHeld + 100) { _ = c.offer(message(seq), seq: seq) }
        XCTAssertEqual(c.held.count, StreamCursor.maxHeld, "past the cap the store read brings them instead")
    }

    func testASeqTheStoreDoesNotHaveIsDroppedAfterAFewFruitlessReads() {
        var n = Node()
        n.start(0)
        n.stored = 2
        n.offer(1); n.offer(2)
        n.offer(1_000_000) // corrupt: nothing ever committed it
        var reads = 0
        while n.timerArmed && reads < 10 {
            n.fireTimer()
            reads += 1
        }
        XCTAssertEqual(reads, StreamCursor.maxFruitlessReads, "the node stops reading the store for it")
        XCTAssertTrue(n.cursor.held.isEmpty)
        n.stored = 3
        n.offer(3)
        XCTAssertEqual(n.delivered, [1, 2, 3], "and goes on live")
    }
}

// StreamCursors over a real SQLite file: the periodic check finds every followed
// conversation's lost last message, with one store read per `checkChunk` conversations.
final class StreamCursorsCheckTests: XCTestCase {
    // The start's read over a real store: a conversation with three messages, followed by a
    // node that heard none of them, delivers the third once (its subscribers' gaps show from it).
    func testAFollowDeliversTheStoredLastMessageOnce() throws {
        let dir = TestDirectory.make("stream-cursors-follow")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir + "/hub.sqlite", now: wallMillis(), messageWording: MessageNotificationText.wording)
        defer { store.close() }
        let key = ConversationKey(service: "website", clientId: "c1")
        let sender = UserRecord(id: "wes", role: "website_agent", name: "Wes")
        for n in 1...3 {
            let m = NewMessage(conversation: key, sender: sender, text: "m\(n)", clientMsgId: nil, ts: 1)
            let appended: Result<AppendResult, StoreError> = waitForStore { store.appendMessage(m, completion: $0) }
            _ = try appended.get()
        }
        let loop = try RunningLoop()
        defer { loop.stop() }
        let delivered = Locked<[Int64]>([])
        let cursors = StreamCursors(deliver: { p in delivered.withLock { $0.append(p.seq ?? -1) } },
                                    store: store, loop: loop.loop, checkEveryMs: 3_600_000)
        let channel = Channel.conversation(key).name
        cursors.follow(channel)
        XCTAssertTrue(eventually { cursors.position(channel) == 3 })
        XCTAssertTrue(eventually { delivered.withLock { $0 } == [3] }, "got \(delivered.withLock { $0 })")
        cursors.checkAll()
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(delivered.withLock { $0 }, [3], "a check after the start delivers nothing again")
    }

    func testTheCheckFindsALostLastMessageInEveryFollowedConversation() throws {
        let dir = TestDirectory.make("stream-cursors-check")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir + "/hub.sqlite", now: wallMillis(), messageWording: MessageNotificationText.wording)
        defer { store.close() }
        let loop = try RunningLoop()
        defer { loop.stop() }
        let delivered = Locked<[String: [Int64]]>([:])
        let cursors = StreamCursors(deliver: { p in delivered.withLock { $0[p.channel, default: []].append(p.seq ?? -1) } },
                                    store: store, loop: loop.loop, checkEveryMs: 3_600_000)
        let count = StreamCursors.checkChunk + 100 // two reads
        let keys = (0..<count).map { ConversationKey(service: "website", clientId: "c\($0)") }
        for key in keys { cursors.follow(Channel.conversation(key).name) }
        // Every cursor started at 0 (the follow's own read), then one message each is
        // committed and its publication lost.
        XCTAssertTrue(eventually { keys.allSatisfy { cursors.position(Channel.conversation($0).name) == 0 } })
        let sender = UserRecord(id: "wes", role: "website_agent", name: "Wes")
        for key in keys {
            let m = NewMessage(conversation: key, sender: sender, text: "hi", clientMsgId: nil, ts: 1)
            let appended: Result<AppendResult, StoreError> = waitForStore { store.appendMessage(m, completion: $0) }
            _ = try appended.get()
        }
        XCTAssertEqual(delivered.withLock { $0.count }, 0, "nothing was published")
        cursors.checkAll()
        XCTAssertTrue(eventually { delivered.withLock { $0.count } == count },
                      "expected every conversation's message, got \(delivered.withLock { $0.count }) of \(count)")
        XCTAssertTrue(delivered.withLock { $0.values.allSatisfy { $0 == [1] } }, "each message once")
        XCTAssertTrue(keys.allSatisfy { cursors.position(Channel.conversation($0).name) == 1 })
        cursors.checkAll()
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertTrue(delivered.withLock { $0.values.allSatisfy { $0 == [1] } }, "a second check delivers nothing again")
    }
}
