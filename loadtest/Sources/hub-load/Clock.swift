import Glibc

// The one clock the generator measures with: CLOCK_MONOTONIC in nanoseconds. Send timestamps
// written into message text use it too, so delivery latency is computed in the same process
// on the same clock (no wall-clock skew).
enum Clock {
    @inline(__always)
    static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    static func seconds(_ ns: UInt64) -> Double { Double(ns) / 1e9 }
}
