import Bridge
import Core
import Metrics
import Notifications
import Persistence
import Protocol

// The running hub as the bridge and notifications see it (Bridge's LiveHub, which refines
// Notifications' LiveNotifications): pushes are published through the broker to the users'
// own channels, each frame encoded once; broadcasts go to the audience channels every
// authenticated connection joins at auth.
final class HubLink: LiveHub {
    let chat: ChatService

    init(chat: ChatService) {
        self.chat = chat
    }

    func isOnline(_ user: String) -> Bool { chat.online.isOnline(user) }

    func onlineUsers(in audience: String) -> Int { chat.online.count(in: audience) }

    func notify(_ n: DeliveredNotification) { chat.notify(n) }

    func pushUnread(_ unread: UnreadCounts, to user: String) { chat.pushUnread(unread, to: user) }

    func broadcast(_ record: NotificationRecord) { chat.broadcast(record) }

    func userStored(_ id: String) { chat.forgetStoredUser(id) }

    func assignmentChanged(_ key: ConversationKey, agent: String?, wasQueued: Bool) {
        chat.assignmentChanged(key, agent: agent, wasQueued: wasQueued)
    }

    func unwatchingParticipants(_ key: ConversationKey, sender: String) -> [String] {
        chat.unwatchingParticipants(key, sender: sender)
    }

    func messageAnswered(_ result: Result<AppendResult, StoreError>, _ key: ConversationKey) {
        chat.subscribeStates?.appended(result, key.channel)
        if case .success(let a) = result { chat.messageCommitted(a, senderObserves: false) }
    }

    func messageChanged(_ message: StoredMessage, notifications: [DeliveredNotification]) {
        chat.messageChanged(message, notifications: notifications)
    }

    var attachmentPolicy: AttachmentPolicy { chat.limits.attachments }

    func statusChanged(_ status: ConversationStatus) { chat.statusChanged(status) }

    func liveStats() -> LiveStats { chat.liveStats() }

    func searchScope(_ user: UserRecord, channel: Channel?) -> Result<SearchQuery.Scope, SearchScopeRefusal>? {
        guard let role = Role(rawValue: user.role) else { return nil }
        return chat.searchScope(userID: user.id, role: role, services: user.services, channel: channel)
    }

    var searchEnabled: Bool { chat.limits.searchIndex }
}
