import Persistence
import Protocol
import Synchronization

// Who serves whom: the assignments, kept in memory for authorization on every op (loaded
// from the store at start, updated when the bridge changes them). Shared by all loops,
// rarely written, so one lock is enough.
final class Directory: Sendable {
    private let assignments = Mutex<[ConversationKey: String]>([:])

    func load(_ list: [Assignment]) {
        assignments.withLock { map in
            for a in list { map[a.conversation] = a.agentId }
        }
    }

    func agent(for key: ConversationKey) -> String? {
        assignments.withLock { $0[key] }
    }

    func setAgent(_ agent: String?, for key: ConversationKey) {
        assignments.withLock { $0[key] = agent }
    }

    func allConversations() -> [ConversationKey] {
        assignments.withLock { Array($0.keys) }
    }

    func conversations(ofAgent agent: String) -> [ConversationKey] {
        assignments.withLock { map in map.filter { $0.value == agent }.map(\.key) }
    }
}

/// The contract's authorization rules, in one place.
enum Authorizer {
    enum Access: Equatable { case participant, observer, denied }

    /// Services an agent role may be assigned for (PROTOCOL.md "Channels").
    static func agentMayServe(_ role: Role, _ service: String) -> Bool {
        switch role {
        case .marketingAgent: return ["marketing", "support", "courses"].contains(service)
        case .websiteAgent: return ["website", "support", "courses"].contains(service)
        default: return false
        }
    }

    static func access(_ user: SessionUser, _ channel: Channel, directory: Directory) -> Access {
        switch channel {
        case .user(let id):
            return id == user.id ? .participant : .denied
        case .conversation(let key):
            switch user.role {
            case .client:
                guard key.clientId == user.id else { return .denied }
                if let services = user.services, !services.contains(key.service) { return .denied }
                return .participant
            case .marketingAgent, .websiteAgent:
                guard agentMayServe(user.role, key.service), directory.agent(for: key) == user.id else { return .denied }
                return .participant
            case .admin:
                // Admins read everything; an unassigned admin reads without joining presence.
                return directory.agent(for: key) == user.id ? .participant : .observer
            }
        }
    }
}
