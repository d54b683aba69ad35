import Core
import Persistence
import Protocol

// The conversations op: the conversation list a user may see, most recent first.
extension Session {
    func conversations(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let service = optionalChoice(c, id, request, "service", Vocabulary.services) else { return }
        guard let status = optionalChoice(c, id, request, "status", Vocabulary.conversationStatuses) else { return }
        var queueOnly = false
        if let v = request["queue"], !v.isNull {
            guard let b = v.boolValue else { return replyError(c, id, .badRequest, "queue must be true or false") }
            queueOnly = b
        }
        if queueOnly && user.role == .client { return replyError(c, id, .forbidden, "the queue is for agents and admins") }
        let before = optionalInt(request, "before")
        if before.present && before.value == nil { return replyError(c, id, .badRequest, "before must be an integer (a ts)") }
        let limitParam = optionalInt(request, "limit")
        let limit = limitParam.present ? (limitParam.value ?? 0) : Int64(ContractLimits.defaultPage)
        guard (1...Int64(ContractLimits.maxPage)).contains(limit) else { return replyError(c, id, .badRequest, "limit must be 1–\(ContractLimits.maxPage)") }
        let store = chat.store
        let userID = user.id
        let withNotes = user.role.isStaff
        inFlight += 1
        let finish: @Sendable ([ConversationKey]) -> Void = { keys in
            let keys = keys.filter { service == nil || $0.service == service }
            store.conversations(keys, for: userID, withNotes: withNotes) { result in
                let filtered = result.map { list in list.filter { status == nil || $0.status.status == status } }
                hop.run { s, c in
                    s.inFlight -= 1
                    s.conversationsFetched(c, id, filtered, before: before.value, limit: Int(limit))
                }
            }
        }
        if queueOnly {
            // The conversations this user may take: every service for an admin, the services
            // an agent's role may serve.
            let services = Vocabulary.services.filter { user.role == .admin || user.role.mayBeAssigned(for: $0) }
            store.queuedConversations(services: services, limit: ContractLimits.maxQueue) { result in
                switch result {
                case .success(let keys): finish(keys)
                case .failure(let e): hop.run { s, c in s.inFlight -= 1; s.replyStoreError(c, id, e) }
                }
            }
            return
        }
        switch user.role {
        case .client:
            finish((user.services ?? Vocabulary.services).map { ConversationKey(service: $0, clientId: user.id) })
        case .websiteAgent, .marketingAgent:
            finish(chat.directory.conversations(ofAgent: user.id).filter { user.role.mayBeAssigned(for: $0.service) })
        case .admin:
            let assigned = chat.directory.allConversations()
            store.allConversations(service: service) { result in
                finish(Array(Set(assigned + ((try? result.get()) ?? []))))
            }
        }
    }

    func conversationsFetched(_ c: Connection, _ id: Int64, _ result: Result<[ConversationSummary], StoreError>,
                              before: Int64?, limit: Int) {
        guard case .success(var list) = result else {
            if case .failure(let e) = result { replyStoreError(c, id, e) }
            return
        }
        // Most recent activity first; conversations without messages last, by channel.
        list.sort { a, b in
            let ta = a.lastMessage?.ts ?? -1, tb = b.lastMessage?.ts ?? -1
            return ta != tb ? ta > tb : a.conversation.channel < b.conversation.channel
        }
        if let before { list = list.filter { ($0.lastMessage?.ts ?? -1) < before } }
        let more = list.count > limit
        let page = list.prefix(limit)
        reply(c, id) { w in
            w.key("conversations"); w.beginArray()
            for s in page {
                w.beginObject()
                w.key("channel"); w.string(s.conversation.channel)
                w.key("client"); w.string(s.conversation.clientId)
                w.key("agents"); w.beginArray(); for a in s.agents { w.string(a) }; w.endArray()
                w.key("last_message")
                if let m = s.lastMessage { w.beginObject(); w.messageFields(m); w.endObject() } else { w.null() }
                w.key("unread"); w.int(s.unread)
                w.key("status"); w.string(s.status.status)
                w.key("status_by"); if let by = s.status.by { w.string(by) } else { w.null() }
                w.key("status_at"); if let at = s.status.at { w.int(at) } else { w.null() }
                w.key("unassigned"); w.bool(s.unassigned)
                w.key("names"); w.beginObject()
                for (id, name) in s.names.sorted(by: { $0.key < $1.key }) { w.key(id); w.string(name) }
                w.endObject()
                w.endObject()
            }
            w.endArray()
            w.key("more"); w.bool(more)
        }
    }
}
