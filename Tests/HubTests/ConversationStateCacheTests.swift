import Protocol
import XCTest
@testable import Hub
@testable import Persistence

// The rules of the one-node record a subscribe without `since` is answered from
// (ConversationStateCache), without sockets: no answer before a store read completed the entry,
// nothing committed meanwhile lost, no answer from an entry that was dropped.
final class ConversationStateCacheTests: XCTestCase {
    let channel = "conv:website:ann"

    /// A send's store answer: message `seq`, and the sender's mark moved to it when `marks`.
    private func sent(_ cache: ConversationStateCache, seq: Int64, by sender: String, marks: Bool = true) {
        let m = StoredMessage(conversation: ConversationKey(service: "website", clientId: "ann"), seq: seq, msgId: seq,
                              senderId: sender, senderRole: "client", senderName: sender, text: "m", ts: 1, clientMsgId: nil)
        cache.appended(.success(AppendResult(message: m, duplicate: false, senderMarkMoved: marks)), channel)
    }

    /// A `read`'s store answer.
    private func read(_ cache: ConversationStateCache, _ user: String, _ seq: Int64) {
        cache.markRead(.success(ReadResult(mark: seq)), channel, user: user)
    }

    func testThereIsNoAnswerUntilAStoreReadHasCompletedTheEntry() {
        let cache = ConversationStateCache()
        XCTAssertNil(cache.state(channel))
        let generation = cache.prepare(channel)
        XCTAssertNil(cache.state(channel), "an entry waiting for its read is not an answer")
        XCTAssertEqual(cache.prepare(channel), generation, "a second read while the first is out completes the same entry")
        cache.fill(channel, generation: generation, lastSeq: 7, readMarks: ["wes": 5])
        let s = cache.state(channel)
        XCTAssertEqual(s?.lastSeq, 7)
        XCTAssertEqual(s?.readMarks, ["wes": 5])
    }

    func testWhatCommitsWhileTheReadIsOutIsKeptWhateverItsSnapshotSaw() {
        let cache = ConversationStateCache()
        let generation = cache.prepare(channel)
        // Committed after the read's snapshot, published before its answer came back.
        sent(cache, seq: 8, by: "ann")
        cache.fill(channel, generation: generation, lastSeq: 7, readMarks: ["ann": 6, "wes": 7])
        XCTAssertEqual(cache.state(channel)?.lastSeq, 8)
        XCTAssertEqual(cache.state(channel)?.readMarks, ["ann": 8, "wes": 7])
        sent(cache, seq: 9, by: "wes")
        XCTAssertEqual(cache.state(channel)?.lastSeq, 9)
        XCTAssertEqual(cache.state(channel)?.readMarks, ["ann": 8, "wes": 9])
    }

    func testSeqsAndReadMarksOnlyGrow() {
        let cache = ConversationStateCache()
        cache.fill(channel, generation: cache.prepare(channel), lastSeq: 10, readMarks: ["ann": 10])
        sent(cache, seq: 4, by: "wes", marks: false) // a commit published late
        read(cache, "ann", 3)
        XCTAssertEqual(cache.state(channel)?.lastSeq, 10)
        XCTAssertEqual(cache.state(channel)?.readMarks, ["ann": 10])
    }

    func testCommitsToAConversationNobodyHereFollowsAreNotKept() {
        let cache = ConversationStateCache()
        sent(cache, seq: 3, by: "ann")
        read(cache, "ann", 3)
        XCTAssertEqual(cache.count, 0)
        XCTAssertNil(cache.state(channel))
    }

    // A send or a read whose answer failed may have committed (a PostgreSQL connection lost
    // after COMMIT), on the WebSocket or through the bridge: the entry goes, the store answers.
    func testAFailedAnswerDropsTheEntry() {
        let cache = ConversationStateCache()
        cache.fill(channel, generation: cache.prepare(channel), lastSeq: 2, readMarks: [:])
        cache.appended(.failure(.unavailable("lost after COMMIT")), channel)
        XCTAssertNil(cache.state(channel))
        cache.fill(channel, generation: cache.prepare(channel), lastSeq: 3, readMarks: [:])
        cache.markRead(.failure(.unavailable("lost")), channel, user: "ann")
        XCTAssertEqual(cache.count, 0)
    }

    func testAnAnswerForADroppedEntryCompletesNothing() {
        let cache = ConversationStateCache()
        let first = cache.prepare(channel)
        cache.drop(channel) // the last subscriber left while the read was out
        XCTAssertEqual(cache.count, 0)
        // Commits meanwhile went unrecorded, so the old answer must not start a new entry...
        cache.fill(channel, generation: first, lastSeq: 3, readMarks: [:])
        XCTAssertNil(cache.state(channel))
        XCTAssertEqual(cache.count, 0)
        // ...nor complete the next one.
        let second = cache.prepare(channel)
        XCTAssertNotEqual(first, second)
        cache.fill(channel, generation: first, lastSeq: 3, readMarks: [:])
        XCTAssertNil(cache.state(channel))
        cache.fill(channel, generation: second, lastSeq: 5, readMarks: [:])
        XCTAssertEqual(cache.state(channel)?.lastSeq, 5)
    }
}
