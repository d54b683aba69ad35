import Glibc

/// Wall-clock milliseconds since the Unix epoch (the contract's `ts`).
public func wallMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Monotonic microseconds, for latency and for the loops' budgets within a turn (inlinable:
/// the loop reads it after every socket it flushes).
@inlinable
public func monotonicMicros() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000
}

/// Monotonic milliseconds, for deadlines.
@inlinable @inline(__always)
public func monotonicMillis() -> Int64 { monotonicMicros() / 1_000 }
