// Who may use a channel (docs/protocol.md "Channels and access"): a pure function of the
// user, the channel and the conversation's assigned agent.
public enum Access: Equatable, Sendable {
    /// Reads, sends, and is seen in presence.
    case participant
    /// An admin not assigned to the conversation: reads and sends without joining presence,
    /// and every read is audited.
    case observer
    case denied

    /// `services`: the services a client's token grants (nil: all). `assignedAgent`: the agent
    /// serving the conversation, if the channel is one.
    public static func of(userID: String, role: Role, services: [String]?, channel: Channel,
                          assignedAgent: String?) -> Access {
        switch channel {
        case .user(let id):
            return id == userID ? .participant : .denied
        case .conversation(let key):
            switch role {
            case .client:
                guard key.clientId == userID else { return .denied }
                if let services, !services.contains(key.service) { return .denied }
                return .participant
            case .marketingAgent, .websiteAgent:
                guard role.mayBeAssigned(for: key.service), assignedAgent == userID else { return .denied }
                return .participant
            case .admin:
                return assignedAgent == userID ? .participant : .observer
            }
        }
    }
}

/// Who may serve a conversation (docs/protocol.md "Channels and access"): the bridge's
/// assignments, an admin's `assign` and an agent's `claim` keep the same rules.
public enum AssignmentRule {
    /// Why `agentID` (with the stored role `agentRole`) may not serve `key` whose client has the
    /// stored role `clientRole` (nil: not stored yet); nil when it may. Always `conflict`.
    public static func refusal(agentID: String, agentRole: String, clientRole: String?, _ key: ConversationKey) -> String? {
        guard let role = Role(rawValue: agentRole), role.isAgent else { return "\(agentID) has the role \(agentRole), not an agent role" }
        guard role.mayBeAssigned(for: key.service) else { return "a \(role.rawValue) cannot be assigned for \(key.service)" }
        if let clientRole, clientRole != Role.client.rawValue { return "\(key.clientId) has the role \(clientRole), not client" }
        return nil
    }
}
