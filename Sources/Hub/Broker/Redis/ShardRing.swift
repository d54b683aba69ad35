// Which Redis instance carries a channel: consistent hashing over the instances named by the
// ordered `--broker` list, the same on every node. Each instance owns 160 points on a 64-bit
// ring; a channel belongs to the first point at or after its hash, so adding an instance moves
// only about 1/n of the channels.
//
// The hash is fixed (FNV-1a 64, then MurmurHash3's fmix64 finalizer to spread FNV's nearby
// outputs for nearby inputs such as "host:port#1", "#2"): never Swift's Hasher, which is seeded
// per process and would give every node its own ring.
struct ShardRing: Sendable {
    let instances: [String]
    private let points: [UInt64]
    private let owners: [Int]

    init(instances: [String], pointsPerInstance: Int = 160) {
        self.instances = instances
        var all: [(UInt64, Int)] = []
        all.reserveCapacity(instances.count * pointsPerInstance)
        for (shard, name) in instances.enumerated() {
            for i in 0..<pointsPerInstance { all.append((Self.hash("\(name)#\(i)"), shard)) }
        }
        // Ties (practically never) broken by shard index, so every node sorts alike.
        all.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        points = all.map(\.0)
        owners = all.map(\.1)
    }

    /// The index (into `instances`) of the instance that carries `channel`.
    func shard(for channel: String) -> Int {
        guard points.count > 1 else { return 0 }
        let h = Self.hash(channel)
        var lo = 0, hi = points.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if points[mid] < h { lo = mid + 1 } else { hi = mid }
        }
        return owners[lo == points.count ? 0 : lo]
    }

    static func hash(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 {
            h ^= UInt64(b)
            h &*= 0x0000_0100_0000_01b3
        }
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h &*= 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }
}
