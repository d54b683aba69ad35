import Persistence
import Protocol

// What notifications need from the running hub: whether a user is connected, and pushes of
// stored notifications, unread counts and broadcasts to live connections. The hub implements
// it (Bridge's LiveHub refines it with what routes need); Notifications never sees a socket,
// a loop or the bridge.
public protocol LiveNotifications: Sendable {
    /// Whether the user has an authenticated connection now.
    func isOnline(_ user: String) -> Bool
    /// `notification` then `unread` to every connection of the user (the push is recorded for receipts).
    func notify(_ n: DeliveredNotification)
    func pushUnread(_ unread: UnreadCounts, to user: String)
    /// `broadcast` to every connection in the audience (and counted in the metrics).
    func broadcast(_ record: NotificationRecord)
}
