import XCTest
@testable import Hub

// The rules of the one-node record a subscribe without `since` is answered from
// (ConversationStateCache), without sockets: no answer before a store read completed the entry,
// nothing committed meanwhile lost, no answer from an entry that was dropped.
final class ConversationStateCacheTests: XCTestCase {
    let channel = "conv:website:ann"

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
        cache.messageCommitted(channel, seq: 8)
        cache.readMarkMoved(channel, user: "ann", seq: 8)
        cache.fill(channel, generation: generation, lastSeq: 7, readMarks: ["ann": 6, "wes": 7])
        XCTAssertEqual(cache.state(channel)?.lastSeq, 8)
        XCTAssertEqual(cache.state(channel)?.readMarks, ["ann": 8, "wes": 7])
        cache.messageCommitted(channel, seq: 9)
        cache.readMarkMoved(channel, user: "wes", seq: 9)
        XCTAssertEqual(cache.state(channel)?.lastSeq, 9)
        XCTAssertEqual(cache.state(channel)?.readMarks, ["ann": 8, "wes": 9])
    }

    func testSeqsAndReadMarksOnlyGrow() {
        let cache = ConversationStateCache()
        cache.fill(channel, generation: cache.prepare(channel), lastSeq: 10, readMarks: ["ann": 10])
        cache.messageCommitted(channel, seq: 4) // a commit published late
        cache.readMarkMoved(channel, user: "ann", seq: 3)
        XCTAssertEqual(cache.state(channel)?.lastSeq, 10)
        XCTAssertEqual(cache.state(channel)?.readMarks, ["ann": 10])
    }

    func testCommitsToAConversationNobodyHereFollowsAreNotKept() {
        let cache = ConversationStateCache()
        cache.messageCommitted(channel, seq: 3)
        cache.readMarkMoved(channel, user: "ann", seq: 3)
        XCTAssertEqual(cache.count, 0)
        XCTAssertNil(cache.state(channel))
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
