import Persistence
import Protocol

// GET /v1/search?query=&user=&channel=&service=&before=&limit=: a backend searches as `user`
// would over the WebSocket (docs/protocol.md "Search"): the same scope, notes only for staff.
extension BridgeAPI {
    func getSearch(_ c: Call) {
        do throws(APIError) {
            guard live.searchEnabled else {
                throw APIError(.serviceUnavailable, "search is off on this hub (--search-index off)", code: .unavailable)
            }
            let terms: [String]
            switch SearchText.parseQuery(c.query("query")) {
            case .success(let t): terms = t
            case .failure(let why): throw APIError(.badRequest, why.message)
            }
            guard let raw = c.query("user"), !raw.isEmpty else {
                throw APIError(.badRequest, "user is required: the id of the user to search as")
            }
            let userID = try self.userID(raw, "user")
            var channel: Channel?
            if let name = c.query("channel"), !name.isEmpty {
                guard let ch = Channel(name) else { throw APIError(.badRequest, "channel is not a channel name") }
                channel = ch
            }
            let service = c.query("service").flatMap { $0.isEmpty ? nil : $0 }
            if let service, !Vocabulary.services.contains(service) {
                throw APIError(.badRequest, "service must be one of \(Vocabulary.services.joined(separator: ", "))")
            }
            let before = try queryInt(c, "before", 1...Int64.max)
            let limit = try queryInt(c, "limit", 1...Int64(ContractLimits.maxSearchPage)) ?? Int64(ContractLimits.defaultSearchPage)
            let store = self.store, live = self.live, narrowed = channel
            store.user(userID) { found in
                switch found {
                case .failure(let e): c.fail(.storage(e))
                case .success(nil): c.fail(APIError(.notFound, "no user \(userID)"))
                case .success(let user?):
                    guard let scoped = live.searchScope(user, channel: narrowed) else {
                        return c.fail(APIError(.forbidden, "user \(userID) (\(user.role)) has no conversations to search", code: .forbidden))
                    }
                    let scope: SearchQuery.Scope
                    switch scoped {
                    case .success(let s): scope = s
                    case .failure(.notConversation): return c.fail(APIError(.badRequest, "channel must be a conversation's channel"))
                    case .failure(.forbidden):
                        return c.fail(APIError(.forbidden, "user \(userID) may not read \(narrowed?.name ?? "")", code: .forbidden))
                    }
                    let staff = Role(rawValue: user.role)?.isStaff ?? false
                    let query = SearchQuery(terms: terms, scope: scope, service: service, before: before, limit: Int(limit),
                                            withNotes: staff)
                    store.searchMessages(query) { result in
                        switch result {
                        case .failure(let e): c.fail(.storage(e))
                        case .success(let page):
                            c.json(.ok, JSONWriter.object(capacity: 1024) { w in w.searchPageFields(page) })
                        }
                    }
                }
            }
        } catch { c.fail(error) }
    }
}
