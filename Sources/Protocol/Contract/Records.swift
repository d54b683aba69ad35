// The records the contract's replies and pushes are made of (docs/protocol.md "Messages" and
// "Notifications"): what a store returns and what Payload.swift writes, the same for the
// WebSocket and the bridge.

/// A chat message as stored and as sent to clients.
public struct StoredMessage: Sendable, Equatable {
    public var conversation: ConversationKey
    public var seq: Int64
    public var msgId: Int64
    public var senderId: String
    public var senderRole: String
    public var senderName: String
    public var text: String
    public var ts: Int64
    public var clientMsgId: String?
    /// An internal note: agents and admins only, never a client (docs/protocol.md "Support desk").
    public var isInternal: Bool
    /// File references sent with the text (docs/protocol.md "Attachments"); empty for most.
    public var attachments: [MessageAttachment]
    /// When the text was last edited (ms); nil if never.
    public var editedAt: Int64?
    /// Deleted: a tombstone whose text and attachments are erased; the seq stays.
    public var isDeleted: Bool
    public init(conversation: ConversationKey, seq: Int64, msgId: Int64, senderId: String, senderRole: String,
                senderName: String, text: String, ts: Int64, clientMsgId: String?, isInternal: Bool = false,
                attachments: [MessageAttachment] = [], editedAt: Int64? = nil, isDeleted: Bool = false) {
        self.conversation = conversation
        self.seq = seq
        self.msgId = msgId
        self.senderId = senderId
        self.senderRole = senderRole
        self.senderName = senderName
        self.text = text
        self.ts = ts
        self.clientMsgId = clientMsgId
        self.isInternal = isInternal
        self.attachments = attachments
        self.editedAt = editedAt
        self.isDeleted = isDeleted
    }
}

/// A file a message refers to: the hub stores the reference, never the file. Checked by
/// `AttachmentRules` before it is stored.
public struct MessageAttachment: Sendable, Equatable {
    public var url: String
    public var name: String
    public var size: Int64
    public var contentType: String
    public init(url: String, name: String, size: Int64, contentType: String) {
        self.url = url
        self.name = name
        self.size = size
        self.contentType = contentType
    }
}

/// One earlier text of an edited message, kept for moderation (admins read it).
public struct MessageEdit: Sendable, Equatable {
    /// The text before this edit.
    public var text: String
    /// When it was replaced (ms), and by whom.
    public var editedAt: Int64
    public var editor: String
    public init(text: String, editedAt: Int64, editor: String) {
        self.text = text
        self.editedAt = editedAt
        self.editor = editor
    }
}

/// A conversation's support-desk status: `open`, `pending` or `resolved`, who set it and when
/// (nil for a conversation nobody set: `open` from the start).
public struct ConversationStatus: Sendable, Equatable {
    public var conversation: ConversationKey
    public var status: String
    public var by: String?
    public var at: Int64?
    public init(conversation: ConversationKey, status: String = "open", by: String? = nil, at: Int64? = nil) {
        self.conversation = conversation
        self.status = status
        self.by = by
        self.at = at
    }
}

/// One item of a user's notification list (a broadcast has `audience`).
public struct NotificationRecord: Sendable, Equatable {
    public var id: Int64
    public var service: String
    public var category: String
    public var title: String
    public var body: String
    public var data: String
    public var ts: Int64
    public var read: Bool
    /// Broadcasts: 'all' or the role addressed. nil for a user's own notification.
    public var audience: String?
    public init(id: Int64, service: String, category: String, title: String, body: String, data: String,
                ts: Int64, read: Bool, audience: String? = nil) {
        self.id = id
        self.service = service
        self.category = category
        self.title = title
        self.body = body
        self.data = data
        self.ts = ts
        self.read = read
        self.audience = audience
    }
}

/// `unread` of the contract: `{total, by_service}`.
public struct UnreadCounts: Sendable, Equatable {
    public var byService: [String: Int]
    public var total: Int { byService.values.reduce(0, +) }
    public init(byService: [String: Int] = [:]) { self.byService = byService.filter { $0.value > 0 } }
}

/// What the store holds, for stats: every message, and every notification row (a broadcast is
/// one row, whoever it reaches).
public struct StoredTotals: Sendable, Equatable {
    public var messages: Int
    public var notifications: Int
    public init(messages: Int, notifications: Int) {
        self.messages = messages
        self.notifications = notifications
    }
}

/// A page of a user's notifications: which, and how many.
public struct NotificationQuery: Sendable, Equatable {
    public var before: Int64?
    public var limit: Int
    public var service: String?
    public var unreadOnly: Bool
    public init(before: Int64? = nil, limit: Int = ContractLimits.defaultPage, service: String? = nil, unreadOnly: Bool = false) {
        self.before = before
        self.limit = limit
        self.service = service
        self.unreadOnly = unreadOnly
    }
}

public struct NotificationPage: Sendable, Equatable {
    /// Newest first.
    public var items: [NotificationRecord]
    public var unread: UnreadCounts
    public var more: Bool
    public init(items: [NotificationRecord], unread: UnreadCounts, more: Bool) {
        self.items = items
        self.unread = unread
        self.more = more
    }
}
