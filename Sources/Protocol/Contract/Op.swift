// The WebSocket ops (docs/protocol.md "Ops"): the one list that drives the session's dispatch,
// the in-flight bound on store-backed ops, and the per-op latency metrics. An op added here
// gets all three; one missing here is an unknown op.

public enum Op: String, CaseIterable, Sendable {
    case auth
    case subscribe
    case unsubscribe
    case send
    case history
    case read
    case typing
    case presence
    case status
    case conversations
    case notifications
    case notificationsRead = "notifications.read"
    case ping
    case adminBroadcast = "admin.broadcast"
    case adminStats = "admin.stats"
    case adminReport = "admin.report"
    case conversationStatus = "conversation.status"
    case claim
    case assign
    case edit
    case delete
    /// An admin reads a message's edit history (moderation).
    case edits
    case search

    /// Ends in a store job: bounded per connection by the in-flight limit, and timed when its
    /// reply leaves (after the store answered), not when the frame has been handled.
    public var isStoreBacked: Bool {
        switch self {
        case .subscribe, .send, .history, .read, .conversations, .notifications, .notificationsRead,
             .adminBroadcast, .adminStats, .adminReport, .conversationStatus, .claim, .assign,
             .edit, .delete, .edits, .search:
            return true
        case .auth, .unsubscribe, .typing, .presence, .status, .ping:
            return false
        }
    }
}
