// Channel names (docs/protocol.md "Channels and access"), parsed and validated once:
// `user:<id>` (a user's own pushes) and `conv:<service>:<client id>` (one conversation).

/// A conversation: one client and one service (`conv:<service>:<clientId>`).
public struct ConversationKey: Hashable, Sendable, CustomStringConvertible {
    public var service: String
    public var clientId: String
    public init(service: String, clientId: String) {
        self.service = service
        self.clientId = clientId
    }
    public var channel: String { "conv:\(service):\(clientId)" }
    public var description: String { channel }
}

public enum Channel: Hashable, Sendable {
    case user(String)
    case conversation(ConversationKey)

    public init?(_ name: String) {
        if name.hasPrefix("user:") {
            let id = String(name.dropFirst(5))
            guard UserID.isValid(id) else { return nil }
            self = .user(id)
        } else if name.hasPrefix("conv:") {
            let parts = name.dropFirst(5).split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, Vocabulary.serviceSet.contains(String(parts[0])),
                  UserID.isValid(String(parts[1])) else { return nil }
            self = .conversation(ConversationKey(service: String(parts[0]), clientId: String(parts[1])))
        } else {
            return nil
        }
    }

    public var name: String {
        switch self {
        case .user(let id): return "user:\(id)"
        case .conversation(let key): return key.channel
        }
    }

    /// The internal channel every authenticated connection of an audience ('all' or a role)
    /// joins for broadcasts. Not a name a client can subscribe to (it parses as no Channel).
    public static func broadcastChannel(_ audience: String) -> String { "broadcast:\(audience)" }
}
