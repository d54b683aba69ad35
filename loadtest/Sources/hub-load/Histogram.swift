// A log-linear (HDR-like) latency histogram in microseconds, 1 µs to 60 s. Values below 256 µs
// have a bucket each; above that every power of two is split into 128 linear buckets, so a
// reported percentile is at most 1/128 (0.8 %) above the true value. Recording is an index
// computation and an increment: no allocation, no sorting. The exact maximum and sum are kept
// on the side.
struct Histogram {
    static let lowest: UInt64 = 1
    static let highest: UInt64 = 60_000_000
    private static let linear: UInt64 = 256     // values < 256 µs are exact
    private static let subBuckets: UInt64 = 128 // per power of two above that

    private var counts: [UInt64]
    private(set) var count: UInt64 = 0
    private(set) var max: UInt64 = 0
    private(set) var sum: UInt64 = 0
    /// Values above `highest` (clamped to it when recorded).
    private(set) var overflows: UInt64 = 0

    init() {
        counts = [UInt64](repeating: 0, count: Histogram.index(Histogram.highest) + 1)
    }

    @inline(__always)
    static func index(_ v: UInt64) -> Int {
        if v < linear { return Int(v) }
        let shift = UInt64(64 - v.leadingZeroBitCount) - 8 // v >> shift is in 128...255
        return Int(linear + (shift - 1) * subBuckets + ((v >> shift) - subBuckets))
    }

    /// The highest value that lands in bucket `i`.
    static func upperBound(_ i: Int) -> UInt64 {
        let i = UInt64(i)
        if i < linear { return i }
        let shift = (i - linear) / subBuckets + 1
        let sub = (i - linear) % subBuckets + subBuckets
        return ((sub + 1) << shift) - 1
    }

    @inline(__always)
    mutating func record(micros: UInt64) {
        var v = micros < Histogram.lowest ? Histogram.lowest : micros
        if v > Histogram.highest { v = Histogram.highest; overflows += 1 }
        counts[Histogram.index(v)] += 1
        count += 1
        sum += v
        if v > max { max = v }
    }

    @inline(__always)
    mutating func record(nanos: UInt64) { record(micros: nanos / 1000) }

    /// The value at percentile `p` (0–100): the upper edge of the bucket holding the
    /// ceil(p% · count)-th value, never above the exact maximum. 0 when empty.
    func percentile(_ p: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = Swift.max(1, UInt64((p / 100 * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() where c > 0 {
            seen += c
            if seen >= rank { return Swift.min(Histogram.upperBound(i), max) }
        }
        return max
    }

    var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }
}
