import Foundation
import Protocol

// Pieces the scenarios' reports share: counts by reason, number formatting, and latency
// histograms as table rows and JSON objects.
struct Tally {
    private(set) var counts: [String: Int] = [:]

    mutating func add(_ reason: String, _ n: Int = 1) { counts[reason, default: 0] += n }

    var total: Int { counts.values.reduce(0, +) }

    /// "reason: n; reason: n" (sorted), or "none".
    var text: String {
        counts.isEmpty ? "none" : counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
    }

    var json: JSON {
        var o = JSONObject()
        for (k, v) in counts.sorted(by: { $0.key < $1.key }) { o[k] = .int(Int64(v)) }
        return .object(o)
    }
}

enum Fmt {
    static func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }

    /// A double rounded to `digits` decimals, for JSON.
    static func round(_ v: Double, _ digits: Int = 1) -> JSON {
        let scale = pow(10, Double(digits))
        return .double((v * scale).rounded() / scale)
    }

    static func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }

    /// "p50 / p90 / p99 / p99.9 / max" of a microsecond histogram, in µs.
    static func percentiles(_ h: Histogram) -> String {
        [h.percentile(50), h.percentile(90), h.percentile(99), h.percentile(99.9), h.max].map { "\($0)" }.joined(separator: " / ")
    }

    /// `{p50, p90, p99, p99_9, max, mean, count}` in microseconds.
    static func histogram(_ h: Histogram) -> JSON {
        var o = JSONObject()
        o["p50"] = .int(Int64(h.percentile(50)))
        o["p90"] = .int(Int64(h.percentile(90)))
        o["p99"] = .int(Int64(h.percentile(99)))
        o["p99_9"] = .int(Int64(h.percentile(99.9)))
        o["max"] = .int(Int64(h.max))
        o["mean"] = round(h.mean)
        o["count"] = .int(Int64(h.count))
        return .object(o)
    }

    /// Microseconds as milliseconds, three decimals.
    static func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
}
