import Protocol

// The values the notification side of the store speaks in: what a backend posts, what a
// user's bell lists, what a receipt tells, what the outbox holds.

/// `email` of a posted notification (docs/protocol.md "Mail").
public enum EmailMode: String, Sendable, Equatable {
    case now
    case fallback
}

/// What a backend posts: stored per recipient.
public struct NotificationContent: Sendable, Equatable {
    public var service: String
    public var category: String
    public var title: String
    public var body: String
    /// A JSON object, serialized.
    public var data: String
    public var email: EmailMode?
    public init(service: String, category: String, title: String, body: String, data: String, email: EmailMode? = nil) {
        self.service = service
        self.category = category
        self.title = title
        self.body = body
        self.data = data
        self.email = email
    }
}

/// A notification just stored for a user, with the user's unread counts after it: what a
/// live push needs.
public struct DeliveredNotification: Sendable, Equatable {
    public var userId: String
    public var record: NotificationRecord
    public var unread: UnreadCounts
    public init(userId: String, record: NotificationRecord, unread: UnreadCounts) {
        self.userId = userId
        self.record = record
        self.unread = unread
    }
}

/// Which notifications `notifications.read` marks.
public enum ReadSelection: Sendable, Equatable {
    case ids([Int64])
    case all
}

/// What became of a notification, per recipient (GET /v1/notifications/{id}).
public struct NotificationReceipt: Sendable, Equatable {
    public struct Recipient: Sendable, Equatable {
        public var user: String
        public var stored: Bool
        public var pushed: Bool
        public var read: Bool
        /// Email: 'pending', 'sent', 'failed', 'skipped', or nil when none was asked for.
        public var email: String?
    }
    public var record: NotificationRecord
    /// Broadcasts: how many users the audience has (recipients lists those with any state).
    public var addressed: Int
    public var recipients: [Recipient]
}

/// A role or everyone fan-out, started: its id and how many users it addresses.
public struct FanoutStart: Sendable, Equatable {
    public var id: Int64
    public var count: Int
}

/// One chunk of a fan-out, stored: the deliveries for users online now, and whether it is done.
public struct FanoutStep: Sendable, Equatable {
    public var delivered: [DeliveredNotification]
    public var stored: Int
    public var finished: Bool
    /// How long the chunk held the writer (its transaction body), in microseconds.
    public var busyMicros: Int64 = 0
}

/// Result of `markRead` on a conversation.
public struct ReadResult: Sendable, Equatable {
    public var mark: Int64
    /// The user's unread counts when a message notification was cleared by this read.
    public var clearedUnread: UnreadCounts?
}

/// A mail waiting in the outbox, with what the mailer needs to decide and send.
public struct OutboxMail: Sendable, Equatable {
    public var id: Int64
    public var notificationId: Int64
    public var userId: String
    public var mode: EmailMode
    public var attempts: Int
    public var address: String?
    public var title: String
    public var body: String
    public var notificationTs: Int64
    /// Whether the user has read the notification.
    public var read: Bool
    /// The user's last connect or disconnect.
    public var lastSeen: Int64?
    /// The user's address that last failed permanently (nil when none did).
    public var bouncedAddress: String? = nil
}

public enum OutboxResult: Sendable, Equatable {
    case sent
    /// Try again at `retryAt`.
    case retry(error: String, retryAt: Int64)
    case failed(String)
    case skipped(String)
}

public struct OutboxCounts: Sendable, Equatable {
    public var pending: Int
    public var sent: Int
    public var failed: Int
    public var skipped: Int
}

/// A POST's first answer, kept under its Idempotency-Key.
public struct StoredResponse: Sendable, Equatable {
    public var status: Int
    public var body: String
    public init(status: Int, body: String) {
        self.status = status
        self.body = body
    }
}

/// An Idempotency-Key claimed by a request: the first answer is stored in the same
/// transaction as the change it made, so a retry can never change anything twice.
public struct IdempotencyClaim<T>: Sendable {
    public var key: String
    /// What the request was (method, path, body digest): a key reused for a different request is refused.
    public var fingerprint: String
    public var render: @Sendable (T) -> StoredResponse
    public init(key: String, fingerprint: String, render: @escaping @Sendable (T) -> StoredResponse) {
        self.key = key
        self.fingerprint = fingerprint
        self.render = render
    }
}

public enum Idempotent<T: Sendable>: Sendable {
    /// The change was made now (and its answer stored when a key was given).
    case fresh(T)
    /// The key was seen before with the same request: its first answer.
    case replay(StoredResponse)
    /// The key was seen before with a different request.
    case mismatch
}

/// Per service and day (UTC) counts for GET /v1/stats.
public struct DailyCount: Sendable, Equatable {
    public var day: String
    public var service: String
    public var messages: Int
    public var notifications: Int
}

/// A notification written to a user's live socket at `at` (ms since the epoch).
public struct PushedNotification: Sendable {
    public let notification: Int64
    public let user: String
    public let at: Int64
    public init(notification: Int64, user: String, at: Int64) {
        self.notification = notification
        self.user = user
        self.at = at
    }
}

/// A user connected or disconnected at `at` (ms since the epoch).
public struct UserSeen: Sendable {
    public let user: String
    public let at: Int64
    public init(user: String, at: Int64) {
        self.user = user
        self.at = at
    }
}
