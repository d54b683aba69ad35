// How many of something a loop may do now, refilled at a fixed rate per millisecond up to a
// burst (a token bucket on the loop's millisecond clock). The loop uses it to spread work that
// arrives in one batch but need not be done at once, such as letting go of thousands of
// stuck readers' sockets, over time instead of over a few back-to-back turns.
struct RateAllowance {
    private let perMillisecond: Int
    private let burst: Int
    private var available: Int
    private var refilledAt: Int64 = 0

    /// Both at least 1: with no refill, `hasAny` would promise what `take` never gives.
    init(perMillisecond: Int, burst: Int) {
        precondition(perMillisecond >= 1 && burst >= 1, "a rate allowance gives at least one a millisecond")
        self.perMillisecond = perMillisecond
        self.burst = burst
        available = burst
    }

    /// Takes one if there is one at `now` (milliseconds).
    mutating func take(now: Int64) -> Bool {
        if now > refilledAt {
            available = Int(min(Int64(burst), Int64(available) + (now - refilledAt) * Int64(perMillisecond)))
            refilledAt = now
        }
        guard available > 0 else { return false }
        available -= 1
        return true
    }

    /// Whether `take` would succeed at `now`, without taking.
    func hasAny(now: Int64) -> Bool { available > 0 || now > refilledAt }
}
