// The contract's limits (docs/protocol.md "Limits"): the same for the WebSocket ops and the bridge.
// Operational knobs an operator or a test may change (rates, in-flight bounds, deadlines) are not
// here; they live in ChatLimits and EngineLimits.
public enum ContractLimits {
    /// A WebSocket request envelope, in bytes.
    public static let maxEnvelopeBytes = 64 * 1024
    /// JSON nesting of a WebSocket request or a bridge body.
    public static let maxJSONDepth = 16
    /// A chat message's text, in characters.
    public static let maxText = 8_000
    /// A `client_msg_id`, in characters.
    public static let maxClientMsgId = 64
    /// The largest page `history`, `subscribe` catch-up, `conversations` and notification lists return.
    public static let maxPage = 100
    /// The longest `epoch` a `subscribe` may give (the hub's own are 16 hex digits).
    public static let maxEpoch = 64
    /// The page size when a request gives no `limit`.
    public static let defaultPage = 50
    /// Notification title and body, in characters; the `data` object, in bytes of JSON.
    public static let maxTitle = 200
    public static let maxBody = 4_000
    public static let maxDataBytes = 8 * 1024
    /// Users one notification may name.
    public static let maxRecipients = 1_000
    /// Notification ids one `notifications.read` may name.
    public static let maxReadIDs = 1_000
    /// Queued conversations `conversations` with `queue: true` considers (oldest first), before paging.
    public static let maxQueue = 1_000
    /// Attachments one message may carry, and the limits of each (docs/protocol.md "Attachments").
    public static let maxAttachments = 10
    public static let maxAttachmentURL = 2_048
    public static let maxAttachmentName = 255
    public static let maxAttachmentContentType = 127
    /// The largest file size an attachment may state: 5 GiB.
    public static let maxAttachmentSize: Int64 = 5 << 30
    /// Edits one message may have: its history is kept for moderation, so it is bounded.
    public static let maxEditsPerMessage = 50
    /// The edit window when `--edit-window` is not given: 15 minutes.
    public static let defaultEditWindowMs: Int64 = 15 * 60 * 1000
    /// A search query, in characters; the most results one search returns, and the default.
    public static let maxSearchQuery = 200
    public static let maxSearchPage = 50
    public static let defaultSearchPage = 20
    /// A user's `typing` pushes per conversation are at least this far apart.
    public static let typingIntervalMs: Int64 = 2_000
}
