import Core
import Persistence
import Protocol

// The notification ops: notifications (a page) and notifications.read.
extension Session {
    func notifications(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        let query: NotificationQuery
        do {
            query = try NotificationQuery.read { name throws(ParamError) in
                guard let v = request[name], !v.isNull else { return nil }
                return v
            }
        } catch {
            return replyError(c, id, .badRequest, error.message)
        }
        inFlight += 1
        chat.notifications.notifications(for: user.id, query) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let page): s.reply(c, id) { w in w.notificationPageFields(page) }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    func notificationsRead(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        let selection: ReadSelection
        if let all = request["all"], !all.isNull {
            guard all.boolValue == true else { return replyError(c, id, .badRequest, "all must be true") }
            selection = .all
        } else if let list = request["ids"]?.arrayValue {
            guard !list.isEmpty, list.count <= ContractLimits.maxReadIDs else { return replyError(c, id, .badRequest, "ids must hold 1–1000 notification ids") }
            var ids: [Int64] = []
            for v in list {
                guard case .int(let n) = v, n >= 1 else { return replyError(c, id, .badRequest, "ids must be positive integers") }
                ids.append(n)
            }
            selection = .ids(ids)
        } else {
            return replyError(c, id, .badRequest, "give ids (an array) or all: true")
        }
        guard let service = optionalChoice(c, id, request, "service", Vocabulary.notificationServices) else { return }
        let chat = self.chat
        let userID = user.id
        inFlight += 1
        chat.notifications.markNotificationsRead(user: user.id, selection, service: service, now: wallMillis()) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let unread): s.reply(c, id) { w in w.key("unread"); w.unreadObject(unread) }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
            // Every connection of the user (other tabs too) sees the new counts.
            if case .success(let unread) = result { chat.pushUnread(unread, to: userID) }
        }
    }
}
