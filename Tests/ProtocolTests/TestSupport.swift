// Shared helpers for ProtocolTests: a deterministic RNG and the ways a byte stream is cut
// into reads (whole, one byte at a time, random splits).

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and deterministic for a given seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in byte() }
    }
}

/// How a byte stream is delivered to an incremental decoder.
enum Feeding: CustomStringConvertible {
    case whole
    case byteByByte
    case random(seed: UInt64)

    var description: String {
        switch self {
        case .whole: return "whole"
        case .byteByByte: return "byte by byte"
        case .random(let seed): return "random splits (seed \(seed))"
        }
    }

    /// Whole, byte by byte, then `randomCount` random splits.
    static func all(randomCount: Int, seedBase: UInt64 = 0x5EED) -> [Feeding] {
        [.whole, .byteByByte] + (0..<UInt64(randomCount)).map { .random(seed: seedBase &+ $0) }
    }

    /// Consecutive ranges covering `0..<count`. Random splits may include empty reads.
    func ranges(count: Int) -> [Range<Int>] {
        switch self {
        case .whole:
            return [0..<count]
        case .byteByByte:
            return (0..<count).map { $0..<($0 + 1) }
        case .random(let seed):
            var rng = SplitMix64(seed: seed)
            guard count > 0 else { return [0..<0] }
            // A per-run maximum piece size gives both very fragmented and coarse runs.
            let maxPiece = Int.random(in: 1...count, using: &rng)
            var out: [Range<Int>] = []
            var p = 0
            while p < count {
                if Int.random(in: 0..<16, using: &rng) == 0 {
                    out.append(p..<p) // an empty read now and then
                }
                let n = min(count - p, Int.random(in: 1...maxPiece, using: &rng))
                out.append(p..<(p + n))
                p += n
            }
            return out
        }
    }

    func chunks(_ bytes: [UInt8]) -> [[UInt8]] {
        ranges(count: bytes.count).map { Array(bytes[$0]) }
    }
}

extension Array where Element == UInt8 {
    init(ascii text: String) { self = Array(text.utf8) }
}

/// Deterministic text of roughly `count` bytes: words from a small vocabulary (so it
/// compresses like real text), with some multi-byte characters mixed in.
func sampleText(byteCount count: Int, seed: UInt64) -> [UInt8] {
    let words = ["hub", "frame", "message", "deflate", "montrose", "ping", "pong", "close",
                 "über", "naïve", "日本語", "😀", "θ", "data", "x", "0123456789"]
    var rng = SplitMix64(seed: seed)
    var out: [UInt8] = []
    out.reserveCapacity(count + 16)
    while out.count < count {
        let word = words[Int(rng.next() % UInt64(words.count))]
        out.append(contentsOf: word.utf8)
        out.append(rng.next() % 7 == 0 ? UInt8(ascii: "\n") : UInt8(ascii: " "))
    }
    // Trim to the exact size on a UTF-8 boundary by dropping continuation bytes, then pad.
    while out.count > count { out.removeLast() }
    while let last = out.last, last >= 0x80 { out.removeLast() }
    while out.count < count { out.append(UInt8(ascii: ".")) }
    return out
}
