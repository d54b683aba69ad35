import Core
import Persistence
import Protocol
import Synchronization

// Who serves whom: the assignments, kept in memory for authorization on every op (loaded
// from the store at start, updated when the bridge changes them). Shared by all loops,
// rarely written, so one lock is enough.
final class Directory: Sendable {
    private struct State {
        var agentOf: [ConversationKey: String] = [:]
        /// The same, indexed by agent (for status pushes and agents' conversation lists).
        var conversationsOf: [String: Set<ConversationKey>] = [:]

        mutating func set(_ agent: String?, _ key: ConversationKey) {
            if let old = agentOf[key] {
                conversationsOf[old]?.remove(key)
                if conversationsOf[old]?.isEmpty == true { conversationsOf[old] = nil }
            }
            agentOf[key] = agent
            if let agent { conversationsOf[agent, default: []].insert(key) }
        }
    }

    private let state = Locked(State())

    func load(_ list: [Assignment]) {
        state.withLock { s in
            for a in list { s.set(a.agentId, a.conversation) }
        }
    }

    /// Makes the assignments exactly `list` (a reload from the store). Returns every
    /// conversation whose agent changed, with the agent who lost it.
    func replace(with list: [Assignment]) -> [(key: ConversationKey, lost: String)] {
        state.withLock { s in
            var wanted: [ConversationKey: String] = [:]
            for a in list { wanted[a.conversation] = a.agentId }
            var lost: [(key: ConversationKey, lost: String)] = []
            for (key, agent) in s.agentOf where wanted[key] != agent {
                lost.append((key, agent))
                s.set(nil, key)
            }
            for (key, agent) in wanted where s.agentOf[key] != agent { s.set(agent, key) }
            return lost
        }
    }

    func agent(for key: ConversationKey) -> String? {
        state.withLock { $0.agentOf[key] }
    }

    func setAgent(_ agent: String?, for key: ConversationKey) {
        state.withLock { $0.set(agent, key) }
    }

    func allConversations() -> [ConversationKey] {
        state.withLock { Array($0.agentOf.keys) }
    }

    func conversations(ofAgent agent: String) -> [ConversationKey] {
        state.withLock { Array($0.conversationsOf[agent] ?? []) }
    }
}

extension Access {
    /// What `user` may do on `channel`, with the conversation's agent from the directory.
    static func of(_ user: SessionUser, _ channel: Channel, directory: any AssignmentDirectory) -> Access {
        var agent: String?
        if case .conversation(let key) = channel { agent = directory.agent(for: key) }
        return .of(userID: user.id, role: user.role, services: user.services, channel: channel, assignedAgent: agent)
    }
}
