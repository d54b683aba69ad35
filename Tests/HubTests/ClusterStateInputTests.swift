import Core
import Foundation
import Protocol
import XCTest
@testable import Hub

// What another node (or anyone with the Redis) publishes on the state channel is checked
// before it touches this node's mirrors: malformed events are refused and counted.
final class ClusterStateInputTests: XCTestCase {
    func testMalformedStateEventsAreRefusedAndCounted() throws {
        let bed = try ClusterTestBed()
        defer { bed.tearDown() }
        let a = try bed.node("a")
        let malformed = [
            "on\nzed\nsuperuser",            // an unknown role is not a client
            "on\nnot a user\nclient",
            "off\n",
            "pj\nnowhere\nzed\nclient\nZed",  // not a presence channel
            "pj\nconv:web:c9\nzed\nwizard\nZed",
            "pl\nconv:web:c9\n",
            "st\nzed\nasleep",
            "as\nnode x\nweb\nc9\n",
            "rl\n",
            "on\nzed",                        // a known kind with too few parts
        ]
        // Redis drops what is published before a subscriber listens: first see that `a` hears
        // the state channel (a well-formed event lands, published again until it does: a slow
        // start, under a sanitizer, can miss the first), then publish the malformed ones.
        XCTAssertTrue(eventually(10) {
            _ = try? bed.call(["PUBLISH", bed.keys.state, "on\nwarm\nclient"])
            return a.online.isOnline("warm")
        }, "node a never heard the state channel")
        for e in malformed { _ = try bed.call(["PUBLISH", bed.keys.state, e]) }
        for _ in 0..<5 { _ = try bed.call(["PUBLISH", bed.keys.state, "zz\nfrom a newer node"]) }
        XCTAssertTrue(eventually { a.state.counters.malformedEvents.load(ordering: .relaxed) == malformed.count },
                      "expected \(malformed.count) refused, got \(a.state.counters.malformedEvents.load(ordering: .relaxed))")
        XCTAssertFalse(a.online.isOnline("zed"), "an event with an unknown role adds nobody")
        XCTAssertEqual(a.state.counters.values["cluster_events_malformed"], malformed.count)
        // A well-formed one still works.
        _ = try bed.call(["PUBLISH", bed.keys.state, "on\nzed\nclient"])
        XCTAssertTrue(eventually { a.online.isOnline("zed") })
        XCTAssertEqual(a.running.syncValue { _ in a.state.unknownKindsLogged }, ["zz"], "an unknown kind is noted once")
    }

    func testAMalformedEventHeardDuringAReReadIsCountedOnce() throws {
        let bed = try ClusterTestBed()
        defer { bed.tearDown() }
        let a = try bed.node("a")
        XCTAssertTrue(eventually { a.running.syncValue { _ in a.state.refreshPartsLeft } <= 0 }, "the first re-read ends")
        // Each event lands while a re-read runs: the events heard meanwhile are replayed over it.
        for _ in 0..<20 {
            a.running.sync { _ in a.state.refreshMirrors() }
            _ = try bed.call(["PUBLISH", bed.keys.state, "on\nzed\nsuperuser"])
        }
        let count = { a.state.counters.malformedEvents.load(ordering: .relaxed) }
        XCTAssertTrue(eventually { count() >= 20 && a.running.syncValue { _ in a.state.refreshPartsLeft <= 0 && !a.state.refreshAgain } })
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(count(), 20, "each counted once, whatever was replayed")
    }

    func testRefreshesAskedForWhileOneRunsMakeOneMoreNotOneEach() throws {
        let bed = try ClusterTestBed()
        defer { bed.tearDown() }
        let a = try bed.node("a")
        let reads = { a.state.counters.mirrorReads.load(ordering: .relaxed) }
        XCTAssertTrue(eventually { a.running.syncValue { _ in a.state.refreshPartsLeft } <= 0 }, "the first re-read ends")
        let before = reads()
        a.running.sync { _ in for _ in 0..<50 { a.state.refreshMirrors() } }
        XCTAssertTrue(eventually { a.running.syncValue { _ in a.state.refreshPartsLeft <= 0 && !a.state.refreshAgain } })
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(reads() - before, 2, "expected the running re-read and one more, not 50")
    }
}
