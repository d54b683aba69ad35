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
        // Walked once over the UTF-8, without splitting into arrays: a send parses its channel.
        let u = name.utf8
        if u.starts(with: "user:".utf8) {
            let id = String(Substring(u.dropFirst(5)))
            guard UserID.isValid(id) else { return nil }
            self = .user(id)
        } else if u.starts(with: "conv:".utf8) {
            let rest = u.dropFirst(5)
            guard let colon = rest.firstIndex(of: UInt8(ascii: ":")) else { return nil }
            let given = rest[rest.startIndex..<colon]
            // The vocabulary's own string: a known service costs no allocation.
            guard let service = Vocabulary.services.first(where: { $0.utf8.elementsEqual(given) }) else { return nil }
            let clientId = String(Substring(rest[u.index(after: colon)...]))
            guard UserID.isValid(clientId) else { return nil }
            self = .conversation(ConversationKey(service: service, clientId: clientId))
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
