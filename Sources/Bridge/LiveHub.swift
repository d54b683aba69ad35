import Metrics
import Notifications
import Persistence
import Protocol

// What the bridge asks of the running hub beyond notifications' pushes (LiveNotifications):
// who is online, the directory, and a message committed through the bridge. The hub
// (Sources/Hub) implements it over its broker and presence; the bridge never sees a socket or
// a loop.
public protocol LiveHub: LiveNotifications {
    /// Users online now in a broadcast audience ('all' or a role).
    func onlineUsers(in audience: String) -> Int
    /// A user record was stored through the bridge.
    func userStored(_ id: String)
    /// The assignment of a conversation changed: the directory, `assignment` pushes, `revoked`,
    /// and the `queue` push when it was queued (it has an agent now) or is again (none).
    func assignmentChanged(_ key: ConversationKey, agent: String?, wasQueued: Bool)
    /// Recipients of a new message in `key` who have no connection subscribed to it.
    func unwatchingParticipants(_ key: ConversationKey, sender: String) -> [String]
    /// The store answered a message sent through the bridge, before the HTTP reply: when
    /// committed, its push, the counters and the notifications it created, as for a WebSocket
    /// send (nothing for a replayed duplicate); a failure may hide a commit, which the hub's
    /// subscribe cache must not miss.
    func messageAnswered(_ result: Result<AppendResult, StoreError>, _ key: ConversationKey)
    /// An edit or a delete was committed: its push, and the notifications that quoted it again.
    func messageChanged(_ message: StoredMessage, notifications: [DeliveredNotification])
    /// The attachment rules of this hub (`--attachment-origin`).
    var attachmentPolicy: AttachmentPolicy { get }
    /// A conversation's status changed: the `conversation` push to the consoles listing it.
    func statusChanged(_ status: ConversationStatus)
    func liveStats() -> LiveStats
    /// What `user` may search, as over the WebSocket (docs/protocol.md "Search"), narrowed to
    /// `channel`; nil for a role that has no conversations to search (a bot, the system).
    func searchScope(_ user: UserRecord, channel: Channel?) -> Result<SearchQuery.Scope, SearchScopeRefusal>?
    /// `--search-index`: off, search answers 503.
    var searchEnabled: Bool { get }
}
