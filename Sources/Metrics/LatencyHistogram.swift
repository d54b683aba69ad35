import Synchronization

/// A latency histogram with fixed buckets (Prometheus `le` bounds, in seconds).
public final class LatencyHistogram: Sendable {
    /// Upper bounds in microseconds: 0.1 ms … 5 s.
    public static let boundsMicros: [Int64] = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
                                               250_000, 500_000, 1_000_000, 5_000_000]
    /// Atomics cannot sit in an array themselves; each bucket is a tiny box.
    private final class Bucket: Sendable { let count = Atomic<Int>(0) }
    private let buckets: [Bucket]
    private let sumMicros = Atomic<Int>(0)
    private let total = Atomic<Int>(0)

    public init() {
        buckets = Self.boundsMicros.map { _ in Bucket() }
    }

    public func record(micros: Int64) {
        for (i, bound) in Self.boundsMicros.enumerated() where micros <= bound {
            buckets[i].count.add(1, ordering: .relaxed)
            break
        }
        sumMicros.add(Int(micros), ordering: .relaxed)
        total.add(1, ordering: .relaxed)
    }

    /// Prometheus lines for `name{labels,le=...}`.
    func render(_ name: String, labels: String, into out: inout String) {
        var cumulative = 0
        for (i, bound) in Self.boundsMicros.enumerated() {
            cumulative += buckets[i].count.load(ordering: .relaxed)
            out += "\(name)_bucket{\(labels),le=\"\(Double(bound) / 1_000_000)\"} \(cumulative)\n"
        }
        let n = total.load(ordering: .relaxed)
        out += "\(name)_bucket{\(labels),le=\"+Inf\"} \(n)\n"
        out += "\(name)_sum{\(labels)} \(Double(sumMicros.load(ordering: .relaxed)) / 1_000_000)\n"
        out += "\(name)_count{\(labels)} \(n)\n"
    }
}
