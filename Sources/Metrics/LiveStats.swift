// What the running hub reports about its connections at one moment (for /metrics, /v1/stats
// and `admin.stats`).
public struct LiveStats: Sendable, Equatable {
    public var connections: Int
    public var webSockets: Int
    /// Users with at least one authenticated connection, by role.
    public var onlineByRole: [String: Int]
    public var slowConsumerCloses: Int
    public init(connections: Int, webSockets: Int, onlineByRole: [String: Int], slowConsumerCloses: Int = 0) {
        self.connections = connections
        self.webSockets = webSockets
        self.onlineByRole = onlineByRole
        self.slowConsumerCloses = slowConsumerCloses
    }
}
