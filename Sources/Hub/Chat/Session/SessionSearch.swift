import Core
import Persistence
import Protocol

// The search op (docs/protocol.md "Search"): the messages the user may read that match, newest
// first; who searches what is ChatService.searchScope.
extension Session {
    func search(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard chat.limits.searchIndex else {
            return replyError(c, id, .unavailable, "search is off on this hub (--search-index off)")
        }
        let terms: [String]
        switch SearchText.parseQuery(request["query"]?.stringValue) {
        case .success(let t): terms = t
        case .failure(let why): return replyError(c, id, .badRequest, why.message)
        }
        guard let service = optionalChoice(c, id, request, "service", Vocabulary.services) else { return }
        var channel: Channel?
        if let v = request["channel"], !v.isNull {
            guard let name = v.stringValue else { return replyError(c, id, .badRequest, "channel must be a string") }
            guard let ch = Channel(name) else { return replyError(c, id, .notFound, "no such channel") }
            channel = ch
        }
        let before = optionalInt(request, "before")
        if before.present && (before.value ?? 0) < 1 {
            return replyError(c, id, .badRequest, "before must be a positive integer (a msg_id)")
        }
        let limitParam = optionalInt(request, "limit")
        let limit = limitParam.present ? (limitParam.value ?? 0) : Int64(ContractLimits.defaultSearchPage)
        guard (1...Int64(ContractLimits.maxSearchPage)).contains(limit) else {
            return replyError(c, id, .badRequest, "limit must be 1–\(ContractLimits.maxSearchPage)")
        }
        let scope: SearchQuery.Scope
        switch chat.searchScope(userID: user.id, role: user.role, services: user.services, channel: channel) {
        case .success(let s): scope = s
        case .failure(.notConversation): return replyError(c, id, .badRequest, "channel must be a conversation's channel")
        case .failure(.forbidden):
            Log.info("forbidden", ["user": user.id, "channel": channel?.name ?? ""])
            return replyError(c, id, .forbidden, "not allowed on this channel")
        }
        let query = SearchQuery(terms: terms, scope: scope, service: service, before: before.value, limit: Int(limit),
                                withNotes: user.role.isStaff)
        let hop = hop(c)
        inFlight += 1
        chat.store.searchMessages(query) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .failure(let e): s.replyStoreError(c, id, e)
                case .success(let page):
                    s.reply(c, id) { w in w.searchPageFields(page) }
                }
            }
        }
    }
}
