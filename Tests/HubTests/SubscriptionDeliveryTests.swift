import XCTest
@testable import Hub

// One subscription's delivery rule without sockets or a store: messages in seq order with no
// gap and no duplicate, live pushes held while a fetch is in flight, the catch-up paced by the
// socket, and the held pushes bounded.
final class SubscriptionDeliveryTests: XCTestCase {
    private typealias D = SubscriptionDelivery

    private func message(_ seq: Int64) -> Publication {
        Publication(channel: "conv:website:u1", frame: Bytes.frame(.text, Array("{\"seq\":\(seq)}".utf8)), seq: seq)
    }

    private func push() -> Publication {
        Publication(channel: "conv:website:u1", frame: Bytes.frame(.text, Array("{\"type\":\"typing\"}".utf8)))
    }

    /// A live subscription whose next message is `next` (subscribed from the end at next - 1).
    private func live(next: Int64) -> D {
        var d = D(ready: false)
        XCTAssertEqual(d.onSubscribed(since: nil, lastSeq: next - 1, pageLast: nil, more: false), .release)
        XCTAssertTrue(d.release().isEmpty)
        return d
    }

    func testLivePushesGoOutInOrder() {
        var d = live(next: 1)
        for seq in Int64(1)...5 { XCTAssertEqual(d.onLive(message(seq), maxHeld: 10), .send, "seq \(seq)") }
        XCTAssertEqual(d.next, 6)
        XCTAssertEqual(d.onLive(push(), maxHeld: 10), .send, "a push that is not a message goes out as it comes")
        XCTAssertEqual(d.next, 6, "and is not counted as a message")
    }

    func testASeqBelowNextIsDropped() {
        var d = live(next: 4)
        XCTAssertEqual(d.onLive(message(3), maxHeld: 10), .skipDuplicate)
        XCTAssertEqual(d.onLive(message(1), maxHeld: 10), .skipDuplicate)
        XCTAssertEqual(d.onLive(message(4), maxHeld: 10), .send)
        XCTAssertEqual(d.onLive(message(4), maxHeld: 10), .skipDuplicate, "the same push twice goes out once")
        XCTAssertEqual(d.heldCount, 0)
    }

    func testAGapHoldsThePushAndFetchesFromNextMinusOne() {
        var d = live(next: 4)
        XCTAssertEqual(d.onLive(message(6), maxHeld: 10), .holdAndFetch(after: 3))
        XCTAssertFalse(d.ready, "paused while the gap is fetched")
        XCTAssertEqual(d.heldCount, 1)
        XCTAssertTrue(d.onFetched(seq: 4))
        XCTAssertTrue(d.onFetched(seq: 5))
        XCTAssertTrue(d.onFetched(seq: 6), "the fetch also returns the held message")
        XCTAssertEqual(d.onPageEnd(more: false, queuedFrames: 0, pageSize: 100, stallLimit: 256), .release)
        let released = d.release()
        XCTAssertEqual(released.map(\.seq), [6])
        XCTAssertEqual(d.onLive(released[0], maxHeld: 10), .skipDuplicate, "6 came with the fetch: the held copy is dropped")
        XCTAssertEqual(d.onLive(message(7), maxHeld: 10), .send)
    }

    func testPushesAreHeldDuringAFetchThenReleasedInOrder() {
        var d = D(ready: false) // subscribing: the fetch is in flight
        XCTAssertEqual(d.onLive(message(11), maxHeld: 10), .hold)
        XCTAssertEqual(d.onLive(push(), maxHeld: 10), .hold, "every push waits, messages or not")
        XCTAssertEqual(d.onLive(message(12), maxHeld: 10), .hold)
        XCTAssertEqual(d.heldCount, 3)
        XCTAssertEqual(d.onSubscribed(since: 0, lastSeq: 10, pageLast: 10, more: false), .release)
        let released = d.release()
        XCTAssertEqual(released.map(\.seq), [11, nil, 12], "in the order they arrived")
        XCTAssertTrue(d.ready)
        XCTAssertEqual(d.heldCount, 0)
        for p in released { XCTAssertEqual(d.onLive(p, maxHeld: 10), .send) }
        XCTAssertEqual(d.next, 13)
    }

    func testACatchUpPageSendsOnlyTheNextSeqs() {
        var d = D(ready: false)
        XCTAssertEqual(d.onSubscribed(since: 0, lastSeq: 300, pageLast: 100, more: true), .fetch(after: 100))
        XCTAssertFalse(d.onFetched(seq: 100), "already sent with the subscribe page")
        XCTAssertTrue(d.onFetched(seq: 101))
        XCTAssertFalse(d.onFetched(seq: 103), "never past a hole")
        XCTAssertEqual(d.next, 102)
    }

    func testASincePastTheEndCountsFromTheEnd() {
        var d = D(ready: false)
        XCTAssertEqual(d.onSubscribed(since: 50, lastSeq: 7, pageLast: nil, more: false), .release)
        XCTAssertEqual(d.next, 8, "the next message (8) is not skipped")
        var fromEnd = D(ready: false)
        _ = fromEnd.onSubscribed(since: nil, lastSeq: 7, pageLast: nil, more: false)
        XCTAssertEqual(fromEnd.next, 8, "no since: from the end")
        var within = D(ready: false)
        _ = within.onSubscribed(since: 3, lastSeq: 7, pageLast: 7, more: false)
        XCTAssertEqual(within.next, 8, "the page's last seq wins")
        var emptyConversation = D(ready: false)
        _ = emptyConversation.onSubscribed(since: 0, lastSeq: 0, pageLast: nil, more: false)
        XCTAssertEqual(emptyConversation.next, 1)
    }

    func testThePacingThresholdWaitsForDrain() {
        var d = D(ready: false)
        _ = d.onSubscribed(since: 0, lastSeq: 1_000, pageLast: 100, more: true)
        XCTAssertEqual(d.onPageEnd(more: true, queuedFrames: 156, pageSize: 100, stallLimit: 256), .fetch(after: 100),
                       "exactly at the stall limit: the next page may still come")
        XCTAssertEqual(d.onPageEnd(more: true, queuedFrames: 157, pageSize: 100, stallLimit: 256), .waitForDrain,
                       "a page that could take the queue past the stall limit waits")
        XCTAssertFalse(d.ready, "still paused while waiting")
        XCTAssertEqual(d.onPageEnd(more: false, queuedFrames: 10_000, pageSize: 100, stallLimit: 256), .release,
                       "the last page releases whatever the queue")
    }

    func testPastMaxHeldPushesTheConnectionGets4009() {
        var d = D(ready: false)
        for seq in Int64(1)...3 { XCTAssertEqual(d.onLive(message(seq), maxHeld: 3), .hold) }
        XCTAssertEqual(d.onLive(message(4), maxHeld: 3), .overHeldCap(held: 3))
        XCTAssertEqual(d.heldCount, 3, "the push over the cap is not kept")
        var gap = live(next: 1)
        XCTAssertEqual(gap.onLive(message(5), maxHeld: 0), .overHeldCap(held: 0), "a gap that cannot be held")
    }

    /// The stuck rule counts the held pushes of all subscriptions together (the session adds
    /// one per hold and subtracts what each release or drop hands back).
    func testTheHeldCountIsSummedOverSubscriptions() {
        var a = D(ready: false), b = D(ready: false)
        var total = 0
        for seq in Int64(1)...4 { if a.onLive(message(seq), maxHeld: 3) == .hold { total += 1 } }
        for seq in Int64(1)...2 { if b.onLive(message(seq), maxHeld: 3) == .hold { total += 1 } }
        XCTAssertEqual(total, a.heldCount + b.heldCount)
        XCTAssertEqual(total, 5, "each subscription is capped on its own: 3 + 2")
        _ = a.onSubscribed(since: nil, lastSeq: 0, pageLast: nil, more: false)
        total -= a.release().count
        XCTAssertEqual(total, b.heldCount)
    }
}
