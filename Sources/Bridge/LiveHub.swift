import Metrics
import Persistence

// What the bridge asks of the running hub: who is online, and pushing to live sockets. The
// hub (Sources/Hub) implements it over its router and presence; the bridge never sees a
// socket or a loop.
public protocol LiveHub: Sendable {
    /// Whether the user has an authenticated connection now.
    func isOnline(_ user: String) -> Bool
    /// Users online now in a broadcast audience ('all' or a role).
    func onlineUsers(in audience: String) -> Int
    /// `notification` then `unread` to every connection of the user (the push is recorded for receipts).
    func deliver(_ n: DeliveredNotification)
    func pushUnread(_ unread: UnreadCounts, to user: String)
    /// `broadcast` to every connection in the audience (and counted in the metrics).
    func broadcast(_ record: NotificationRecord)
    /// A user record was stored through the bridge.
    func userStored(_ id: String)
    /// The assignment of a conversation changed: the directory, `assignment` pushes, `revoked`.
    func assignmentChanged(_ key: ConversationKey, agent: String?)
    /// Recipients of a new message in `key` who have no connection subscribed to it.
    func unwatchingParticipants(_ key: ConversationKey, sender: String) -> [String]
    /// A message was committed: its push, the counters and the notifications it created, as
    /// for a WebSocket send (nothing for a replayed duplicate).
    func messageCommitted(_ result: AppendResult)
    func liveStats() -> LiveStats
}
