// Every bridge route under /v1, named as its latency is labelled in /metrics
// (`montrose_bridge_seconds{route="…"}`), in the order the histograms are rendered. The one
// list of routes: dispatch in BridgeAPI names a case, and HubMetrics is given `labels`.
public enum BridgeRoute: String, CaseIterable, Sendable {
    case putUser = "users.put"
    case putAssignment = "assignments.put"
    case deleteAssignment = "assignments.delete"
    case postNotification = "notifications.post"
    case postBroadcast = "broadcasts.post"
    case postMessage = "messages.post"
    case getMessages = "messages.get"
    case deleteMessage = "message.delete"
    case getMessageEdits = "message_edits.get"
    case putStatus = "conversation_status.put"
    case getUserNotifications = "user_notifications.get"
    case getNotification = "notification.get"
    case postToken = "tokens.post"
    case getStats = "stats.get"
    case getSupportReport = "reports_support.get"
    case getWebhookDeliveries = "webhook_deliveries.get"
    case getSearch = "search.get"

    /// The metric labels, in rendering order (for `HubMetrics(bridgeRoutes:)`).
    public static var labels: [String] { allCases.map(\.rawValue) }
}
