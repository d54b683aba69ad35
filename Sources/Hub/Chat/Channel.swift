import Persistence
import Protocol

// Channel names of the contract (docs/protocol.md "Channels and access"), parsed and validated once.
enum Channel: Hashable, Sendable {
    case user(String)
    case conversation(ConversationKey)

    init?(_ name: String) {
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

    var name: String {
        switch self {
        case .user(let id): return "user:\(id)"
        case .conversation(let key): return key.channel
        }
    }

    /// The internal channel every authenticated connection of an audience ('all' or a role)
    /// joins for broadcasts. Not a name a client can subscribe to (it parses as no Channel).
    static func broadcastChannel(_ audience: String) -> String { "broadcast:\(audience)" }
}

/// Who a connection is, from its verified token.
struct SessionUser: Sendable, Equatable {
    let id: String
    let role: Role
    let name: String
    /// Subscribed services (clients); nil means all.
    let services: [String]?

    var record: UserRecord { UserRecord(id: id, role: role.rawValue, name: name, services: services) }
}
