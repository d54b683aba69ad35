import Persistence
import Protocol

// Channel names of the contract (PROTOCOL.md "Channels"), parsed and validated once.
enum Channel: Hashable, Sendable {
    case user(String)
    case conversation(ConversationKey)

    init?(_ name: String) {
        if name.hasPrefix("user:") {
            let id = String(name.dropFirst(5))
            guard Channel.isValidUserID(id) else { return nil }
            self = .user(id)
        } else if name.hasPrefix("conv:") {
            let parts = name.dropFirst(5).split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, TokenClaims.knownServices.contains(String(parts[0])),
                  Channel.isValidUserID(String(parts[1])) else { return nil }
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

    /// 1–64 of A-Za-z0-9_.@- (the contract's user id rule).
    static func isValidUserID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "@") || c == UInt8(ascii: "-")
        }
    }
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
