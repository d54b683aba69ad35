// The bridge's bearer keys. Several may be valid at once (rotation: add the new key, move the
// backends over, remove the old one). Compared in constant time: how long a refusal takes
// says nothing about how much of a key was right.
public struct BearerKeys: Sendable {
    private let keys: [[UInt8]]

    public init(_ keys: [String]) {
        self.keys = keys.map { Array($0.utf8) }
    }

    /// True when `authorization` is `Bearer <one of the keys>`.
    public func accepts(_ authorization: String?) -> Bool {
        guard let authorization else { return false }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return false }
        let presented = Array(parts[1].utf8)
        var matched = false
        // Every key is compared, whichever matches: the time depends only on the key lengths.
        for key in keys where Self.equal(key, presented) { matched = true }
        return matched
    }

    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            diff |= x ^ y
        }
        return diff == 0
    }
}
