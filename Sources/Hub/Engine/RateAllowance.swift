// How many of something may be done now, refilled at a fixed rate up to a burst (a token
// bucket on the loop's millisecond clock). The loop uses it to spread work that arrives in one
// batch but need not be done at once, such as letting go of thousands of stuck readers'
// sockets, over time instead of over a few back-to-back turns; a session uses it for its op rate.
//
// It counts thousandths of a token: a rate per second is then exactly that many thousandths a
// millisecond, so a fractional rate per millisecond (200 a second is 0.2) accrues without the
// rounding a Double would add, and a token taken after five milliseconds at 200/s is there.
struct RateAllowance {
    private static let unit: Int64 = 1_000
    /// Thousandths of a token added per millisecond (the rate per second).
    private let perSecond: Int64
    private let capacity: Int64
    private var available: Int64
    private var refilledAt: Int64 = 0

    /// Both at least 1. Starts full.
    init(perSecond: Int, burst: Int) {
        precondition(perSecond >= 1 && burst >= 1, "a rate allowance gives at least one a second, and holds at least one")
        self.perSecond = Int64(perSecond)
        capacity = Int64(burst) * Self.unit
        available = capacity
    }

    init(perMillisecond: Int, burst: Int) {
        self.init(perSecond: perMillisecond * 1_000, burst: burst)
    }

    /// Takes one if there is one at `now` (milliseconds).
    mutating func take(now: Int64) -> Bool {
        available = refilled(now)
        if now > refilledAt { refilledAt = now }
        guard available >= Self.unit else { return false }
        available -= Self.unit
        return true
    }

    /// Whether `take` would succeed at `now`, without taking.
    func hasAny(now: Int64) -> Bool { refilled(now) >= Self.unit }

    /// What is available at `now`: an earlier time than the last refill adds nothing.
    private func refilled(_ now: Int64) -> Int64 {
        guard now > refilledAt else { return available }
        let elapsed = now - refilledAt
        let missing = capacity - available
        // Compared before multiplying: a long idle spell times the rate could overflow.
        guard elapsed <= missing / perSecond else { return capacity }
        return available + elapsed * perSecond
    }
}
