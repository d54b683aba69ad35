import XCTest
@testable import Hub

// The loop spreads mass cuts and linger closes with RateAllowance: a burst first, then a fixed
// number a millisecond, never more than the burst however long the loop was idle. A session's
// op rate is a rate per second, often a fraction of one a millisecond, and accrues exactly.
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

    func testAFractionalRateAccruesExactly() {
        var a = RateAllowance(perSecond: 200, burst: 400)
        XCTAssertEqual(taken(&a, at: 0), 400, "the burst")
        for t in Int64(1)...4 { XCTAssertFalse(a.take(now: t), "0.2 a millisecond: nothing whole at \(t) ms") }
        XCTAssertTrue(a.take(now: 5), "five fifths make one, with no rounding short of it")
        XCTAssertFalse(a.take(now: 5))
        XCTAssertFalse(a.hasAny(now: 9))
        XCTAssertTrue(a.hasAny(now: 10))
        XCTAssertEqual(taken(&a, at: 1_005), 200, "one second: the rate per second")
    }

    func testARateBelowOneASecondInMillisecondsStillRefills() {
        var a = RateAllowance(perSecond: 3, burst: 1)
        XCTAssertTrue(a.take(now: 0))
        XCTAssertFalse(a.take(now: 333), "0.999 of one")
        XCTAssertTrue(a.take(now: 334))
    }

    func testAYearIdleDoesNotOverflow() {
        var a = RateAllowance(perSecond: 1_000_000, burst: 1_000_000)
        XCTAssertEqual(taken(&a, at: 0, upTo: 10), 10)
        XCTAssertEqual(taken(&a, at: 365 * 86_400_000, upTo: 2_000_000), 1_000_000)
    }

    /// The session's former bucket (a Double refilled by elapsed × rate / 1000): where that
    /// arithmetic is exact (rates whose share of a millisecond is a binary fraction), the
    /// allowance answers the same on every request of an irregular schedule.
    func testTheSameAnswersAsTheDoubleBucketWhereItIsExact() {
        for rate in [125, 250, 500, 1_000, 1_500, 4_000] {
            let burst = 7
            var a = RateAllowance(perSecond: rate, burst: burst)
            var tokens = Double(burst), at: Int64 = 0
            var rng = SystemRandomNumberGenerator()
            var now: Int64 = 0
            for i in 0..<5_000 {
                now += Int64.random(in: 0...9, using: &rng)
                tokens = min(Double(burst), tokens + Double(now - at) * Double(rate) / 1000)
                at = now
                let expected = tokens >= 1
                if expected { tokens -= 1 }
                XCTAssertEqual(a.take(now: now), expected, "rate \(rate), request \(i) at \(now) ms")
            }
        }
    }
}
