import XCTest
@testable import Hub

// The loop spreads mass cuts and linger closes with RateAllowance: a burst first, then a fixed
// number a millisecond, never more than the burst however long the loop was idle.
final class RateAllowanceTests: XCTestCase {
    private func taken(_ a: inout RateAllowance, at now: Int64, upTo limit: Int = 1_000) -> Int {
        var n = 0
        while n < limit && a.take(now: now) { n += 1 }
        return n
    }

    func testABurstThenTheRatePerMillisecond() {
        var a = RateAllowance(perMillisecond: 4, burst: 64)
        XCTAssertEqual(taken(&a, at: 1_000), 64, "the burst")
        XCTAssertFalse(a.hasAny(now: 1_000))
        XCTAssertEqual(taken(&a, at: 1_000), 0, "nothing more within the same millisecond")
        XCTAssertTrue(a.hasAny(now: 1_001))
        XCTAssertEqual(taken(&a, at: 1_001), 4, "one millisecond later: the rate")
        XCTAssertEqual(taken(&a, at: 1_004), 12, "three milliseconds: three times the rate")
    }

    func testAnIdleSpellRefillsNoMoreThanTheBurst() {
        var a = RateAllowance(perMillisecond: 8, burst: 64)
        XCTAssertEqual(taken(&a, at: 5), 64)
        XCTAssertEqual(taken(&a, at: 60_000), 64, "a minute idle: still one burst")
        XCTAssertEqual(taken(&a, at: 60_002), 16)
    }

    func testWhatIsNotTakenCarriesOverUpToTheBurst() {
        var a = RateAllowance(perMillisecond: 4, burst: 10)
        XCTAssertEqual(taken(&a, at: 0, upTo: 3), 3)
        XCTAssertEqual(taken(&a, at: 1), 10, "7 left plus 4 refilled, capped at 10")
    }

    func testAClockThatDoesNotAdvanceGivesNothingNew() {
        var a = RateAllowance(perMillisecond: 4, burst: 4)
        XCTAssertEqual(taken(&a, at: 100), 4)
        XCTAssertEqual(taken(&a, at: 99), 0, "an earlier time refills nothing")
        XCTAssertEqual(taken(&a, at: 100), 0)
        XCTAssertEqual(taken(&a, at: 101), 4)
    }
}
