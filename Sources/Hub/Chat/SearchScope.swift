import Persistence
import Protocol

// Who searches what (docs/protocol.md "Search"), one rule for the `search` op and the bridge's
// GET /v1/search (which searches as the user would over the WebSocket): an admin everything, a
// client its own conversations of the services it may use, an agent the conversations assigned
// to it; a `channel` narrows to that conversation if the user may read it (Access, as
// `subscribe` decides).
extension ChatService {
    func searchScope(userID: String, role: Role, services: [String]?, channel: Channel?) -> Result<SearchQuery.Scope, SearchScopeRefusal> {
        if let channel {
            guard case .conversation(let key) = channel else { return .failure(.notConversation) }
            let access = Access.of(userID: userID, role: role, services: services, channel: channel,
                                   assignedAgent: directory.agent(for: key))
            return access == .denied ? .failure(.forbidden) : .success(.conversations([key]))
        }
        switch role {
        case .admin:
            return .success(.everything)
        case .client:
            return .success(.conversations((services ?? Vocabulary.services).map { ConversationKey(service: $0, clientId: userID) }))
        case .websiteAgent, .marketingAgent:
            return .success(.conversations(directory.conversations(ofAgent: userID).filter { role.mayBeAssigned(for: $0.service) }))
        }
    }
}
