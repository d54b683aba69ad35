import Core
import Persistence
import Protocol

extension ChatService {
    /// Everything that follows a new message's commit, whoever sent it (a WebSocket `send` or
    /// the bridge): the `message` push through the broker, the counters, the notifications the
    /// message created for participants not watching, and the sender's read mark. Runs on the
    /// store's completion thread, in commit order, after the sender's reply was queued; a
    /// replayed duplicate changes nothing.
    /// `senderObserves`: the sender reads as an observer (an unassigned admin), so moving their
    /// read mark is not announced to the conversation.
    func messageCommitted(_ a: AppendResult, senderObserves: Bool) {
        guard !a.duplicate else { return }
        broker.publish(.message(a.message))
        if let status = a.reopened { statusChanged(status) }
        if a.queued { queueChanged(a.message.conversation, lastMessage: a.message, unassigned: true) }
        metrics.messagesStored.add(1, ordering: .relaxed)
        metrics.notificationsStored.add(a.notifications.count, ordering: .relaxed)
        for n in a.notifications { notify(n) }
        if let r = a.senderRead {
            readMarkMoved(a.message.conversation, user: a.message.senderId, r, announce: !senderObserves)
        }
    }
}

extension ChatService {
    /// An edit or a delete committed: `message.updated` or `message.deleted` to the
    /// conversation's subscribers (a note's to staff only), and the notifications that quoted the
    /// message pushed again with their new words. Runs on the store's completion thread.
    func messageChanged(_ m: StoredMessage, notifications: [DeliveredNotification]) {
        broker.publish(m.isDeleted ? .messageDeleted(m) : .messageUpdated(m))
        for n in notifications { notify(n) }
    }
}

// The support desk's pushes (docs/protocol.md "Support desk").
extension ChatService {
    /// Who gets a `messages` notification for a new message: the participants not watching
    /// the conversation; never the client for an internal note.
    func recipients(of m: NewMessage) -> [String] {
        let unwatching = unwatchingParticipants(m.conversation, sender: m.sender.id)
        return m.isInternal ? unwatching.filter { $0 != m.conversation.clientId } : unwatching
    }

    /// The roles whose users are told by notification if `m` puts its conversation in the
    /// queue: every role that may take it, when none of their users is online (so somebody is
    /// always told); none when one is online (they get the `queue` push) or an agent serves it.
    func queueNotifyRoles(_ m: NewMessage) -> [String] {
        guard m.isFromClient, directory.agent(for: m.conversation) == nil else { return [] }
        let roles = Role.eligible(for: m.conversation.service)
        if online.anyOnline(roles) { return [] }
        return roles.map(\.rawValue)
    }

    /// A status changed: the `conversation` push to the consoles that list the conversation
    /// (its client, its agent, every admin), each connection once.
    func statusChanged(_ status: ConversationStatus) {
        let key = status.conversation
        var users = [key.clientId]
        if let agent = directory.agent(for: key) { users.append(agent) }
        for user in users { broker.publish(.conversationStatus(to: Channel.user(user).name, status)) }
        broker.publish(.conversationStatus(to: Channel.broadcastChannel(Role.admin.rawValue), status))
    }

    /// An assignment changed (the bridge, `claim` or `assign`): the directory at once, the
    /// `assignment` push to the client and to the agents who gained or lost it (so their lists
    /// stay true), `revoked` for the one who lost it, and the queue's push: out of it when it
    /// was queued and has an agent now; into it again when its agent was removed after the
    /// client wrote (`wasQueued` then says whether the store queued it).
    func assignmentChanged(_ key: ConversationKey, agent: String?, wasQueued: Bool) {
        let previous = reassign(key, to: agent)
        var users = [key.clientId]
        if let agent { users.append(agent) }
        if let previous, previous != agent { users.append(previous) }
        for user in users { broker.publish(.assignment(to: user, key, agent: agent)) }
        if wasQueued { queueChanged(key, lastMessage: nil, unassigned: agent == nil) }
        Log.info("assignment", ["channel": key.channel, "agent": agent ?? "-", "previous": previous ?? "-"])
    }

    /// A conversation entered the queue (`unassigned`) or left it: the `queue` push to every
    /// connection of the roles that may take it.
    func queueChanged(_ key: ConversationKey, lastMessage: StoredMessage?, unassigned: Bool) {
        for role in Role.eligible(for: key.service) {
            broker.publish(.queue(to: Channel.broadcastChannel(role.rawValue), key, lastMessage: lastMessage, unassigned: unassigned))
        }
    }
}
