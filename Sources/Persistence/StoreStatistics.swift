// What a store reports about its own work, for GET /v1/stats (the "writer" object) and
// /metrics, in terms any store can fill: a list of counters and gauges the bridge renders in a
// loop, knowing nothing of how the store works. SQLiteStore reports its writer's batches and
// checkpoints; another store reports what it has.
public struct StoreStatistics: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case counter, gauge
    }

    public struct Entry: Sendable, Equatable {
        /// The key in /v1/stats's "writer" object.
        public var jsonKey: String
        /// The Prometheus family. Entries of one family sit next to each other, each with its
        /// `labels`; the family's HELP and TYPE are the first entry's.
        public var metricName: String
        /// The sample's labels (`by="writer"`), nil for none.
        public var labels: String?
        public var help: String
        public var kind: Kind
        public var value: Int

        public init(jsonKey: String, metricName: String, labels: String? = nil, help: String, kind: Kind, value: Int) {
            self.jsonKey = jsonKey
            self.metricName = metricName
            self.labels = labels
            self.help = help
            self.kind = kind
            self.value = value
        }
    }

    /// In the order they are rendered.
    public var entries: [Entry]

    public init(_ entries: [Entry]) { self.entries = entries }
}
