// The closes one loop spreads over time: slow consumers over their output cap, cut off (4009)
// after the turn's writes, and closing connections whose linger time ran out. When a busy
// channel pushes thousands of stuck readers over at once, dropping their queues, and two
// seconds later resetting their sockets (tens of microseconds each), is spread over time
// instead of stalling everyone else on the loop for ~30 back-to-back turns. Neither waiting
// costs anything but memory: a connection waiting for its cut takes no pushes, and one past
// its linger deadline has nothing left to send. The sweep finds expired connections once a
// second, so without a rate they always come in one batch. No rate while shutting down, where
// the shutdown deadline bounds it. Confined to its loop's thread.
//
// A class for the same reason as `WriteScheduler`: a cut can schedule another (a handler's
// `didClose` sends to other connections).
final class CloseScheduler {
    private var cuts: FIFO<Connection>
    private var expiries: FIFO<Connection>
    private var cutAllowance: RateAllowance
    private var expiryAllowance: RateAllowance

    init(limits: EngineLimits) {
        cuts = FIFO(keepingCapacity: limits.loopListCapacity)
        expiries = FIFO(keepingCapacity: limits.loopListCapacity)
        cutAllowance = RateAllowance(perMillisecond: limits.cutsPerMillisecond, burst: limits.closeBurst)
        expiryAllowance = RateAllowance(perMillisecond: limits.expiriesPerMillisecond, burst: limits.closeBurst)
    }

    /// Some close waits, whether or not its rate allows it now.
    var isWaiting: Bool { !cuts.isEmpty || !expiries.isEmpty }
    var hasCuts: Bool { !cuts.isEmpty }
    var hasExpiries: Bool { !expiries.isEmpty }

    /// A close can be made now.
    func hasDue(now: Int64, unlimited: Bool) -> Bool {
        (!cuts.isEmpty && (unlimited || cutAllowance.hasAny(now: now)))
            || (!expiries.isEmpty && (unlimited || expiryAllowance.hasAny(now: now)))
    }

    func scheduleCut(_ c: Connection) { cuts.append(c) }

    func scheduleExpiry(_ c: Connection) { expiries.append(c) }

    // What the rate allows this turn, taken one at a time off the front (closing one may
    // schedule more, which join the end of the list).
    func cutSlowConsumers(now: Int64, unlimited: Bool) {
        while !cuts.isEmpty && (unlimited || cutAllowance.take(now: now)) {
            cuts.popFirst()?.cutOff()
        }
    }

    func closeExpired(now: Int64, unlimited: Bool) {
        while !expiries.isEmpty && (unlimited || expiryAllowance.take(now: now)) {
            expiries.popFirst()?.expire()
        }
    }
}
