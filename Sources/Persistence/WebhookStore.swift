import Foundation
import Protocol
import Synchronization

// The webhook outbox (docs/protocol.md "Webhooks"): events written in the same transaction as
// the change they describe, claimed by a deliverer with a lease, delivered in order per
// ordering key (a conversation's channel), retried until delivered or given up. SQL lives in
// SQLiteStore+Webhooks.swift and PostgresStore+Webhooks.swift; the rules shared by both here.

/// The event types the hub posts (the contract's list; `type` in the body).
public enum WebhookEventType: String, Sendable, CaseIterable {
    case messageCreated = "message.created"
    case messageUpdated = "message.updated"
    case messageDeleted = "message.deleted"
    case conversationStatus = "conversation.status"
    case conversationQueued = "conversation.queued"
    case assignmentChanged = "assignment.changed"
}

/// Whether this hub writes webhook events at all. Off unless the hub was started with
/// `--webhook`: a hub without one writes nothing extra in any transaction. Set once at start,
/// before the first write; read by writer threads (an atomic: no lock on the write path).
public final class WebhookOutbox: Sendable {
    private let on = Atomic<Bool>(false)
    public init() {}
    public var enabled: Bool { on.load(ordering: .acquiring) }
    public func enable() { on.store(true, ordering: .releasing) }

    /// `evt_` and 24 random hex digits (96 bits): unique without a round trip, and the same on
    /// every attempt of the event, so a receiver drops duplicates by it.
    public static func newEventID() -> String {
        var g = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = Array("evt_".utf8)
        for _ in 0..<3 {
            let r = g.next() as UInt32
            for shift in stride(from: 28, through: 0, by: -4) { out.append(hex[Int((r >> UInt32(shift)) & 15)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The body exactly as it is POSTed: `{"id","type","ts","data"}`, `ts` in ms since the epoch.
    public static func body(id: String, type: WebhookEventType, ts: Int64, data: (inout JSONWriter) -> Void) -> String {
        String(decoding: JSONWriter.object(capacity: 512) { w in
            w.key("id"); w.string(id)
            w.key("type"); w.string(type.rawValue)
            w.key("ts"); w.int(ts)
            w.key("data"); w.beginObject(); data(&w); w.endObject()
        }, as: UTF8.self)
    }

    /// Attempts kept in `webhook_attempts` (the newest; older ones are trimmed as new ones land).
    public static let keptAttempts: Int64 = 1_000
    /// Finished (delivered or given-up) events are deleted this long after they finished.
    public static let keepFinishedMs: Int64 = 7 * 86_400_000
}

/// One event claimed for delivery.
public struct WebhookEvent: Sendable, Equatable {
    /// The row's number: the order events were written in.
    public var seq: Int64
    public var eventId: String
    public var type: String
    /// The conversation's channel, or "" (no order with other events).
    public var orderingKey: String
    public var body: String
    public var createdAt: Int64
    /// Attempts made before this one.
    public var attempts: Int
}

/// What one attempt came to.
public enum WebhookOutcome: Sendable, Equatable {
    /// A 2xx answer.
    case delivered(status: Int)
    /// Another answer (`status`) or none (`status` nil, `error` says why): tried again at `retryAt`.
    case retry(status: Int?, error: String?, retryAt: Int64)
    /// The last attempt failed too: the event is given up on.
    case givenUp(status: Int?, error: String?)
}

/// An attempt as `GET /v1/webhooks/deliveries` lists it.
public struct WebhookDelivery: Sendable, Equatable {
    public enum State: String, Sendable { case pending, delivered, givenUp = "given_up" }
    public var eventId: String
    public var type: String
    public var attempt: Int
    public var ts: Int64
    public var status: Int?
    public var error: String?
    public var durationMs: Int64
    /// The event's state now (`delivered` also when the event has been pruned since).
    public var state: State
}

public protocol WebhookStore: Sendable {
    /// Off until the hub enables it (see `WebhookOutbox`).
    var webhookOutbox: WebhookOutbox { get }
    /// Writes one event in a transaction of its own (whether or not the outbox is enabled).
    func enqueueWebhook(_ type: WebhookEventType, orderingKey: String, now: Int64,
                        data: @escaping @Sendable (inout JSONWriter) -> Void, completion: @escaping StoreCompletion<String>)
    /// Up to `limit` events that are due, not leased to another node, and the oldest
    /// unfinished event of their ordering key, oldest first, leased to `node` until
    /// `now + leaseMs`. SQLite (one process per file, one deliverer): no lease, a plain read.
    func claimDueWebhooks(node: String, now: Int64, leaseMs: Int64, limit: Int,
                          completion: @escaping StoreCompletion<[WebhookEvent]>)
    /// Records an attempt of an event claimed by `node` and releases its lease; `durationMs`
    /// is the attempt's. An event no longer `node`'s (its lease lapsed and another node took
    /// it) keeps the attempt row but not the outcome.
    func finishWebhook(_ event: WebhookEvent, _ outcome: WebhookOutcome, node: String, now: Int64, durationMs: Int64,
                       completion: @escaping StoreCompletion<Void>)
    /// The newest attempts first, at most `limit`.
    func webhookDeliveries(limit: Int, completion: @escaping StoreCompletion<[WebhookDelivery]>)
    /// Events neither delivered nor given up.
    func pendingWebhookCount(completion: @escaping StoreCompletion<Int>)
    /// Deletes events finished before `finishedBefore`.
    func pruneWebhooks(finishedBefore: Int64)
}

/// The backoff after a failed attempt, shared by the deliverer and the store tests.
public struct WebhookRetryPolicy: Sendable, Equatable {
    /// Delay after the first failure; doubles per attempt up to `maxDelayMs`.
    public var baseDelayMs: Int64 = 1_000
    public var maxDelayMs: Int64 = 3_600_000
    /// Retried until this long after the event was written, then given up.
    public var retryForMs: Int64 = 86_400_000
    public init() {}

    /// The outcome of failed attempt number `attempt` (1-based) of an event written at
    /// `createdAt`: a retry after an exponential delay with equal jitter (half fixed, half
    /// random, so receivers coming back are not hit by every event at once), never later than
    /// the 24-hour mark (one last attempt there), or given up once that mark has passed.
    public func afterFailure(attempt: Int, createdAt: Int64, now: Int64, status: Int?, error: String?,
                             random: Double = Double.random(in: 0...1)) -> WebhookOutcome {
        let giveUpAt = createdAt + retryForMs
        if now >= giveUpAt { return .givenUp(status: status, error: error) }
        let full = min(maxDelayMs, baseDelayMs << Int64(min(max(attempt - 1, 0), 30)))
        let delay = full / 2 + Int64(Double(full / 2) * min(max(random, 0), 1))
        return .retry(status: status, error: error, retryAt: min(now + max(delay, 1), giveUpAt))
    }
}

// The support desk's events (docs/protocol.md "Webhooks"), the same `data` from both stores.
extension JSONWriter {
    /// `conversation.queued`: the conversation waits for an agent.
    public mutating func queuedEventFields(_ key: ConversationKey, lastMessage: StoredMessage?, ts: Int64) {
        self.key("channel"); string(key.channel)
        self.key("client"); string(key.clientId)
        self.key("service"); string(key.service)
        self.key("queued_at"); int(ts)
        self.key("last_message")
        if let m = lastMessage { beginObject(); messageFields(m); endObject() } else { null() }
    }

    /// `assignment.changed`: the conversation's agent now (none after a removal) and before.
    public mutating func assignmentEventFields(_ key: ConversationKey, agent: String?, previous: String?) {
        self.key("channel"); string(key.channel)
        assignmentFields(key, agent: agent)
        self.key("previous_agent"); if let previous { string(previous) } else { null() }
    }
}
