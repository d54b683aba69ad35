import Persistence
import Protocol
import Synchronization

// The Metrics module: what the hub counts and how long its requests take, rendered as
// Prometheus text for /metrics. It counts and renders only: no sockets, no store calls; the
// live figures and the store's statistics are handed in as values. Lock-free: every count is
// an atomic, so a loop thread recording an op never waits.

/// Everything counted across the hub.
public final class HubMetrics: Sendable {
    /// Bridge routes whose latency is measured, in rendering order (Bridge's `BridgeRoute.labels`);
    /// every WebSocket op is measured too (`Op.allCases`).
    public let bridgeRoutes: [String]
    private let wsLatency: [Op: LatencyHistogram]
    private let bridgeLatency: [String: LatencyHistogram]

    public let messagesStored = Atomic<Int>(0)
    public let notificationsStored = Atomic<Int>(0)
    public let notificationsPushed = Atomic<Int>(0)
    public let broadcastsSent = Atomic<Int>(0)
    public let mailsSent = Atomic<Int>(0)
    public let mailsFailed = Atomic<Int>(0)
    public let authFailures = Atomic<Int>(0)
    /// Outbox depth as last counted by the mailer.
    public let outboxPending = Atomic<Int>(0)
    /// Webhooks (rendered only when the hub posts them: a hub without --webhook keeps its text).
    public let webhooksConfigured = Atomic<Bool>(false)
    public let webhooksDelivered = Atomic<Int>(0)
    public let webhookAttemptsFailed = Atomic<Int>(0)
    public let webhooksGivenUp = Atomic<Int>(0)
    /// Events neither delivered nor given up, as last counted by the deliverer.
    public let webhookOutboxPending = Atomic<Int>(0)

    public init(bridgeRoutes: [String] = []) {
        self.bridgeRoutes = bridgeRoutes
        wsLatency = Dictionary(uniqueKeysWithValues: Op.allCases.map { ($0, LatencyHistogram()) })
        bridgeLatency = Dictionary(uniqueKeysWithValues: bridgeRoutes.map { ($0, LatencyHistogram()) })
    }

    public func recordOp(_ op: Op, micros: Int64) { wsLatency[op]?.record(micros: micros) }
    public func recordRoute(_ route: String, micros: Int64) { bridgeLatency[route]?.record(micros: micros) }

    /// The Prometheus text exposition (format 0.0.4).
    public func prometheus(live: LiveStats, store: StoreStatistics) -> String {
        var out = ""
        func gauge(_ name: String, _ help: String, _ value: Int, type: String = "gauge") {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        gauge("montrose_connections", "Open TCP connections on both listeners.", live.connections)
        gauge("montrose_websockets", "Open WebSocket connections.", live.webSockets)
        gauge("montrose_slow_consumer_closes_total", "Connections closed with 4009: unsent output over its cap.",
              live.slowConsumerCloses, type: "counter")
        out += "# HELP montrose_users_online Users with an authenticated connection, by role.\n# TYPE montrose_users_online gauge\n"
        for role in Vocabulary.roles { out += "montrose_users_online{role=\"\(role)\"} \(live.onlineByRole[role] ?? 0)\n" }
        gauge("montrose_messages_stored_total", "Chat messages stored.", messagesStored.load(ordering: .relaxed), type: "counter")
        gauge("montrose_notifications_stored_total", "Notifications stored (one per recipient; a broadcast counts once).",
              notificationsStored.load(ordering: .relaxed), type: "counter")
        gauge("montrose_notifications_pushed_total", "Notification pushes handed to live connections.",
              notificationsPushed.load(ordering: .relaxed), type: "counter")
        gauge("montrose_broadcasts_total", "Broadcasts stored.", broadcastsSent.load(ordering: .relaxed), type: "counter")
        gauge("montrose_mails_sent_total", "Mails accepted by the SMTP server.", mailsSent.load(ordering: .relaxed), type: "counter")
        gauge("montrose_mails_failed_total", "Mails given up on (permanent failure or too many attempts).",
              mailsFailed.load(ordering: .relaxed), type: "counter")
        gauge("montrose_outbox_pending", "Mails waiting in the outbox.", outboxPending.load(ordering: .relaxed))
        if webhooksConfigured.load(ordering: .relaxed) {
            gauge("montrose_webhooks_delivered_total", "Webhook events delivered (a 2xx answer).",
                  webhooksDelivered.load(ordering: .relaxed), type: "counter")
            gauge("montrose_webhook_attempts_failed_total", "Webhook attempts without a 2xx answer (error, timeout or other status).",
                  webhookAttemptsFailed.load(ordering: .relaxed), type: "counter")
            gauge("montrose_webhooks_given_up_total", "Webhook events given up on after 24 hours of retries.",
                  webhooksGivenUp.load(ordering: .relaxed), type: "counter")
            gauge("montrose_webhook_outbox_pending", "Webhook events neither delivered nor given up.",
                  webhookOutboxPending.load(ordering: .relaxed))
        }
        gauge("montrose_auth_failures_total", "Refused WebSocket authentications.", authFailures.load(ordering: .relaxed), type: "counter")
        var family = ""
        for e in store.entries {
            if e.metricName != family {
                out += "# HELP \(e.metricName) \(e.help)\n# TYPE \(e.metricName) \(e.kind.rawValue)\n"
                family = e.metricName
            }
            if let labels = e.labels {
                out += "\(e.metricName){\(labels)} \(e.value)\n"
            } else {
                out += "\(e.metricName) \(e.value)\n"
            }
        }
        out += "# HELP montrose_op_seconds WebSocket op latency, request to reply.\n# TYPE montrose_op_seconds histogram\n"
        for op in Op.allCases { wsLatency[op]?.render("montrose_op_seconds", labels: "op=\"\(op.rawValue)\"", into: &out) }
        out += "# HELP montrose_bridge_seconds Bridge request latency, request to answer.\n# TYPE montrose_bridge_seconds histogram\n"
        for r in bridgeRoutes { bridgeLatency[r]?.render("montrose_bridge_seconds", labels: "route=\"\(r)\"", into: &out) }
        return out
    }
}
