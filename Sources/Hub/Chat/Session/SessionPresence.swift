import Core
import Persistence
import Protocol

// typing, presence and status.
extension Session {
    func typing(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard let (channel, access) = channel(c, id, request, user) else { return }
        guard case .conversation = channel else { return replyError(c, id, .badRequest, "typing goes to a conversation channel") }
        reply(c, id) { _ in }
        // An observing admin leaves no trace; at most one push per 2 s per user and channel.
        guard access == .participant, chat.presence.allowTyping(user.id, channel.name, now: c.loop.now) else { return }
        chat.broker.publish(.typing(channel.name, user))
    }

    func presence(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard let (channel, _) = channel(c, id, request, user) else { return }
        let online = chat.presence.online(channel.name)
        reply(c, id) { w in
            w.key("online"); w.beginArray()
            for (m, status) in online {
                w.beginObject()
                w.key("id"); w.string(m.id)
                w.key("role"); w.string(m.role.rawValue)
                w.key("name"); w.string(m.name)
                w.key("status"); w.string(status)
                w.endObject()
            }
            w.endArray()
        }
    }

    func status(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard user.role != .client else { return replyError(c, id, .forbidden, "status is for agents and admins") }
        guard let value = request["status"]?.stringValue, Vocabulary.presenceStatuses.contains(value) else {
            return replyError(c, id, .badRequest, "status must be available, busy or away")
        }
        chat.presence.setStatus(user.id, value)
        reply(c, id) { _ in }
        var channels = Set(chat.directory.conversations(ofAgent: user.id).map(\.channel))
        for (name, sub) in subscriptions where sub.joined { channels.insert(name) }
        for name in channels {
            chat.broker.publish(.status(name, user: user.id, value))
        }
    }
}
