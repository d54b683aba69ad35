import Core
import Persistence
import Protocol

// The support desk's ops (docs/protocol.md "Support desk"): a conversation's status, an agent's
// claim on a queued conversation, and an admin's assignment.
extension Session {
    /// `conversation.status`: the conversation's assigned agent or an admin sets it.
    func setStatus(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, _) = channel(c, id, request, user) else { return }
        guard case .conversation(let key) = channel else { return replyError(c, id, .badRequest, "a status is kept for conversation channels") }
        guard user.role.isStaff else { return replyError(c, id, .forbidden, "the assigned agent or an admin sets the status") }
        guard let status = request["status"]?.stringValue, Vocabulary.conversationStatuses.contains(status) else {
            return replyError(c, id, .badRequest, "status must be one of \(Vocabulary.conversationStatuses.joined(separator: ", "))")
        }
        let chat = self.chat
        inFlight += 1
        chat.store.setStatus(key, status, by: user.id, now: wallMillis()) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let change): s.reply(c, id) { w in w.statusFields(change.status) }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
            if case .success(let change) = result, change.changed { chat.statusChanged(change.status) }
        }
    }

    /// `claim`: an agent whose role may serve the service takes a conversation nobody serves.
    /// Two claims at once: the store lets exactly one insert the assignment.
    func claim(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let key = conversationKey(c, id, request) else { return }
        guard user.role.isAgent else { return replyError(c, id, .forbidden, "agents claim; an admin assigns with assign") }
        guard user.role.mayBeAssigned(for: key.service) else {
            return replyError(c, id, .forbidden, "a \(user.role.rawValue) cannot serve \(key.service)")
        }
        let chat = self.chat, store = chat.store, agent = user.id
        inFlight += 1
        // The bridge's rule: a conversation's client must be a client (an agent's id as the
        // client part of a channel names no support case).
        store.user(key.clientId) { client in
            if case .success(let c?) = client, c.role != Role.client.rawValue {
                return hop.run { s, c2 in s.inFlight -= 1; s.replyError(c2, id, .conflict, "\(key.clientId) has the role \(c.role), not client") }
            }
            store.deskState(key) { desk in
            let wasQueued = (try? desk.get())?.unassigned ?? false
            store.claimAssignment(Assignment(conversation: key, agentId: agent), now: wallMillis()) { result in
                if case .success(let holder) = result, holder == agent { chat.assignmentChanged(key, agent: agent, wasQueued: wasQueued) }
                hop.run { s, c in
                    s.inFlight -= 1
                    switch result {
                    case .success(let holder) where holder == agent: s.reply(c, id) { w in w.assignmentFields(key, agent: agent) }
                    case .success(let holder): s.replyError(c, id, .conflict, "\(holder) serves \(key.channel) already")
                    case .failure(let e): s.replyStoreError(c, id, e)
                    }
                }
            }
            }
        }
    }

    /// `assign`: an admin gives a conversation to an agent, or moves it to another, under the
    /// bridge's role–service rules.
    func assign(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let key = conversationKey(c, id, request) else { return }
        guard user.role == .admin else { return replyError(c, id, .forbidden, "admins assign") }
        guard let agent = request["agent_id"]?.stringValue, UserID.isValid(agent) else {
            return replyError(c, id, .badRequest, "agent_id must be 1–64 of A-Za-z0-9_.@-")
        }
        let chat = self.chat, store = chat.store
        inFlight += 1
        let fail: @Sendable (ErrorCode, String) -> Void = { code, message in
            hop.run { s, c in s.inFlight -= 1; s.replyError(c, id, code, message) }
        }
        store.user(agent) { agentResult in
            store.user(key.clientId) { clientResult in
                guard case .success(let agentUser) = agentResult, case .success(let clientUser) = clientResult else {
                    return fail(.unavailable, "storage unavailable")
                }
                guard let agentUser else { return fail(.notFound, "no user \(agent)") }
                if let why = AssignmentRule.refusal(agentID: agent, agentRole: agentUser.role, clientRole: clientUser?.role, key) {
                    return fail(.conflict, why)
                }
                store.deskState(key) { desk in
                    let wasQueued = (try? desk.get())?.unassigned ?? false
                    store.setAssignment(Assignment(conversation: key, agentId: agent), now: wallMillis()) { result in
                        if case .success = result { chat.assignmentChanged(key, agent: agent, wasQueued: wasQueued) }
                        hop.run { s, c in
                            s.inFlight -= 1
                            switch result {
                            case .success(let previous):
                                s.reply(c, id) { w in
                                    w.assignmentFields(key, agent: agent)
                                    w.key("previous_agent"); if let previous { w.string(previous) } else { w.null() }
                                }
                            case .failure(let e): s.replyStoreError(c, id, e)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The conversation `request["channel"]` names, whoever may use it (claim and assign act
    /// on conversations the caller cannot read yet); replies otherwise.
    private func conversationKey(_ c: Connection, _ id: Int64, _ request: JSON) -> ConversationKey? {
        guard let name = request["channel"]?.stringValue else {
            replyError(c, id, .badRequest, "channel must be a string")
            return nil
        }
        guard case .conversation(let key)? = Channel(name) else {
            replyError(c, id, .notFound, "no such conversation channel")
            return nil
        }
        return key
    }
}
