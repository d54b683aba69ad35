import Dispatch
import Synchronization
import Core
import Protocol

// The persistence seam: what the hub asks of storage, with no SQL in sight. SQLiteStore
// implements it on one file for one node; PostgresStore on PostgreSQL, for one node or several.
//
// The contract, kept by every implementation (NotificationStore's calls too):
// - Every call is asynchronous and returns at once; loops never block on storage. A completion
//   runs on a store thread, and a caller that needs its own loop forwards it there.
// - Write completions run after the commit (never before: an answer means committed; a failed
//   commit answers `.unavailable`), one at a time, in commit order, on one thread; writes
//   committed in one transaction complete in the order they ran in it. Relied on by:
//   the `send` op (the ack is queued before the push, and a conversation's pushes leave in
//   seq order), `Notifier.run` (no older `unread` count overtakes a newer one), and
//   `Broker.publish`, which keeps order only for pushes published from one thread.
// - Read completions run on reader threads, in no set order, each from one snapshot of
//   committed data. Nothing may rely on a read answering before or after another call.
// - Deduplication holds with several writers at once: a unique key and INSERT … ON CONFLICT,
//   never SELECT then INSERT, so the writer that loses a race gets a replay of the first
//   answer, not a conflict.
// - A closure handed to a call that runs inside the transaction (an `IdempotencyClaim`'s
//   `render`, `once`'s `make`) is pure: it computes from what it captured and its argument
//   (reading the clock at most), takes no lock, touches no hub state and does no I/O. A store
//   may run it on any of its threads, and again if it retries the transaction. What the hub
//   knows (who is online, who watches a conversation) is passed in as a value taken when the
//   call is made.

public struct UserRecord: Sendable, Equatable {
    public var id: String
    public var role: String
    public var name: String
    public var email: String?
    /// Subscribed services (clients); nil means all.
    public var services: [String]?
    public init(id: String, role: String, name: String, email: String? = nil, services: [String]? = nil) {
        self.id = id
        self.role = role
        self.name = name
        self.email = email
        self.services = services
    }
}

public struct Assignment: Hashable, Sendable {
    public var conversation: ConversationKey
    public var agentId: String
    public init(conversation: ConversationKey, agentId: String) {
        self.conversation = conversation
        self.agentId = agentId
    }
}

public struct NewMessage: Sendable {
    public var conversation: ConversationKey
    public var sender: UserRecord
    public var text: String
    public var clientMsgId: String?
    public var ts: Int64
    /// An internal note (agents and admins only).
    public var isInternal: Bool
    /// The roles whose users get a `messages` notification if this message puts the
    /// conversation in the queue (the hub passes them when none of them is online).
    public var queueNotifyRoles: [String]
    /// File references, already checked by `AttachmentRules`.
    public var attachments: [MessageAttachment]
    public init(conversation: ConversationKey, sender: UserRecord, text: String, clientMsgId: String?, ts: Int64,
                isInternal: Bool = false, queueNotifyRoles: [String] = [], attachments: [MessageAttachment] = []) {
        self.conversation = conversation
        self.sender = sender
        self.text = text
        self.clientMsgId = clientMsgId
        self.ts = ts
        self.isInternal = isInternal
        self.queueNotifyRoles = queueNotifyRoles
        self.attachments = attachments
    }

    /// A client's own message (not a note, not a system or bot message): it reopens a resolved
    /// conversation, and queues one that no agent serves.
    public var isFromClient: Bool { sender.role == "client" && sender.id == conversation.clientId && !isInternal }
}

public struct AppendResult: Sendable, Equatable {
    public var message: StoredMessage
    /// True when (sender, client_msg_id) was already stored: `message` is the first one.
    public var duplicate: Bool
    /// `messages` notifications created or updated for recipients not watching the conversation.
    public var notifications: [DeliveredNotification] = []
    /// The sender's read mark, when sending moved it past messages of others: whoever replies
    /// has read what came before. Nil when it only covered the sender's own message.
    public var senderRead: ReadResult? = nil
    /// True when the store moved the sender's read mark to this message, also when it covered
    /// only their own message and `senderRead` is nil: what a cache of read marks must learn.
    public var senderMarkMoved = false
    /// The status the message set: a client's message reopens a resolved conversation.
    public var reopened: ConversationStatus? = nil
    /// The message put the conversation in the queue (a client wrote, no agent serves it).
    public var queued = false
}

/// An edit or a delete asked of the store (docs/protocol.md "Edit and delete").
public struct MessageChangeRequest: Sendable {
    public var conversation: ConversationKey
    public var seq: Int64
    /// Who asks: only the sender may edit, and delete within the window.
    public var actor: String
    /// Admins delete at any time (moderation); nobody edits another's message.
    public var anyTime: Bool
    public var now: Int64
    /// The edit window: the message's `ts + windowMs` must not have passed.
    public var windowMs: Int64
    /// False for a client: an internal note is then answered as no such message.
    public var withNotes: Bool
    public init(conversation: ConversationKey, seq: Int64, actor: String, anyTime: Bool = false, now: Int64, windowMs: Int64,
                withNotes: Bool = true) {
        self.conversation = conversation
        self.seq = seq
        self.actor = actor
        self.anyTime = anyTime
        self.now = now
        self.windowMs = windowMs
        self.withNotes = withNotes
    }

    /// The rules an edit and a delete share, for a message that exists: the actor's own (unless
    /// `anyTime`, an admin's delete), within the window (unless `anyTime`). Nil: allowed.
    public func refusal(of m: StoredMessage) -> MessageChange? {
        if anyTime { return nil }
        guard m.senderId == actor else { return .notSender }
        guard now <= m.ts + windowMs else { return .windowClosed }
        return nil
    }
}

/// What an edit or a delete did.
public enum MessageChange: Sendable, Equatable {
    /// Done: the message as stored now, and the `messages` notifications whose body showed it
    /// (rewritten in the same transaction; pushed again to their users).
    case changed(StoredMessage, notifications: [DeliveredNotification])
    /// Nothing to do: the same text again, or a message deleted already. The message as stored.
    case unchanged(StoredMessage)
    /// No such message, or (for an edit) it is deleted.
    case notFound
    /// Another user's message.
    case notSender
    /// The window has passed.
    case windowClosed
    /// The message has been edited `ContractLimits.maxEditsPerMessage` times already.
    case tooManyEdits
}

/// A status set: the conversation's status now, and whether this call changed it.
public struct StatusChange: Sendable, Equatable {
    public var status: ConversationStatus
    public var changed: Bool
    public init(status: ConversationStatus, changed: Bool) {
        self.status = status
        self.changed = changed
    }
}

public struct MessagePage: Sendable, Equatable {
    /// Ascending by seq.
    public var messages: [StoredMessage]
    /// More messages exist beyond this page in the direction asked for.
    public var more: Bool
    /// No messages, nothing beyond.
    public static let empty = MessagePage(messages: [], more: false)
    public init(messages: [StoredMessage], more: Bool) {
        self.messages = messages
        self.more = more
    }
}

/// What a subscribe answers with, read in one snapshot: the conversation's last seq, every
/// read mark in it (user → seq), and the first page of messages after the subscriber's `since`.
/// One snapshot, so a page that says no more ends at `lastSeq`: no message committed between two
/// reads can fall between them.
public struct ConversationState: Sendable, Equatable {
    public var lastSeq: Int64
    public var readMarks: [String: Int64]
    /// Empty when no messages were asked for.
    public var page: MessagePage
    public init(lastSeq: Int64, readMarks: [String: Int64], page: MessagePage) {
        self.lastSeq = lastSeq
        self.readMarks = readMarks
        self.page = page
    }
}

public struct ConversationSummary: Sendable, Equatable {
    public var conversation: ConversationKey
    public var agents: [String]
    public var lastMessage: StoredMessage?
    /// Messages from others after the user's read mark.
    public var unread: Int
    /// Display names of the client and the agents, as last recorded (id → name).
    public var names: [String: String] = [:]
    public var status: ConversationStatus
    /// The client wrote and no agent serves it: it is in the queue.
    public var unassigned = false
    public init(conversation: ConversationKey, agents: [String], lastMessage: StoredMessage?, unread: Int) {
        self.conversation = conversation
        self.agents = agents
        self.lastMessage = lastMessage
        self.unread = unread
        status = ConversationStatus(conversation: conversation)
    }
}

public enum StoreError: Error, Equatable, Sendable {
    /// Storage could not do it now (a disk error); nothing was written.
    case unavailable(String)
    /// The store is shutting down: nothing new is accepted.
    case closing
    case conflict(String)
    case internalError(String)
}

public typealias StoreCompletion<T> = @Sendable (Result<T, StoreError>) -> Void

public protocol Store: Sendable {
    func upsertUser(_ user: UserRecord, now: Int64, completion: @escaping StoreCompletion<UserRecord>)
    func user(_ id: String, completion: @escaping StoreCompletion<UserRecord?>)

    /// Sets the agent for a client's service conversation; returns the agent it replaced.
    func setAssignment(_ a: Assignment, now: Int64, completion: @escaping StoreCompletion<String?>)
    /// Removes it; returns the agent removed (nil if there was none).
    func removeAssignment(_ key: ConversationKey, completion: @escaping StoreCompletion<String?>)
    func allAssignments(completion: @escaping StoreCompletion<[Assignment]>)

    /// Stores a message with the conversation's next seq, or finds the first one with the
    /// same (sender, client_msg_id). `notify`: recipients with no connection subscribed to the
    /// conversation, who get its `messages` notification. The completion runs after the commit.
    func appendMessage(_ m: NewMessage, notify: [String], completion: @escaping StoreCompletion<AppendResult>)
    /// Messages with seq > `after`, ascending, at most `limit`.
    func messages(_ key: ConversationKey, after: Int64, limit: Int, completion: @escaping StoreCompletion<MessagePage>)
    /// The `limit` messages before `before` (or the newest), ascending. `withNotes` false: internal
    /// notes are left out before counting (a client's history pages count what it may read).
    func messages(_ key: ConversationKey, before: Int64?, limit: Int, withNotes: Bool, completion: @escaping StoreCompletion<MessagePage>)
    func lastSeq(_ key: ConversationKey, completion: @escaping StoreCompletion<Int64>)
    /// The last seq of each key (0 for a conversation with no row), in one read: for periodic
    /// checks over many conversations at once. Keys given twice are answered once.
    func lastSeqs(_ keys: [ConversationKey], completion: @escaping StoreCompletion<[ConversationKey: Int64]>)
    /// The conversation's last seq, every read mark in it and, when `messagesAfter` is given, the
    /// messages with seq > it (ascending, at most `limit`), in one read and one snapshot.
    func conversationState(_ key: ConversationKey, messagesAfter: Int64?, limit: Int,
                           completion: @escaping StoreCompletion<ConversationState>)

    /// Moves the user's read mark forward (never back); returns the mark now stored, and the
    /// unread counts when it cleared the conversation's `messages` notification.
    func markRead(user: String, _ key: ConversationKey, seq: Int64, now: Int64, completion: @escaping StoreCompletion<ReadResult>)
    /// Summaries of `keys`, in that order. `withNotes`: internal notes count in `lastMessage`
    /// and `unread` (agents and admins); a client's summaries never see them.
    func conversations(_ keys: [ConversationKey], for user: String, withNotes: Bool,
                       completion: @escaping StoreCompletion<[ConversationSummary]>)
    /// Every conversation that has a row (for admins), optionally of one service.
    func allConversations(service: String?, completion: @escaping StoreCompletion<[ConversationKey]>)
    func recordAudit(actor: String, action: String, target: String, ts: Int64)

    // Support desk (docs/protocol.md "Support desk").
    /// Sets the status (one of `Vocabulary.conversationStatuses`), creating the conversation's
    /// row if it has none.
    func setStatus(_ key: ConversationKey, _ status: String, by: String, now: Int64, completion: @escaping StoreCompletion<StatusChange>)
    /// The conversation's status and whether it is in the queue (a missing row: open, not queued).
    func deskState(_ key: ConversationKey, completion: @escaping StoreCompletion<(status: ConversationStatus, unassigned: Bool)>)
    /// Assigns `a` only if the conversation has no agent; answers the agent it has afterwards
    /// (`a.agentId` when this call won, or it held it already).
    func claimAssignment(_ a: Assignment, now: Int64, completion: @escaping StoreCompletion<String>)
    /// Queued conversations (unassigned and not resolved) of `services`, oldest first, at most `limit`.
    func queuedConversations(services: [String], limit: Int, completion: @escaping StoreCompletion<[ConversationKey]>)
    /// The desk events of `from..<to` (ms), of one service or all, for a support report.
    func supportEvents(from: Int64, to: Int64, service: String?, completion: @escaping StoreCompletion<SupportEvents>)
    // Messages people expect (docs/protocol.md "Edit and delete", "Search").
    /// Replaces the text of a message, keeping the text it had in its edit history, in one
    /// transaction with the search index and the `messages` notifications that showed it.
    func editMessage(_ r: MessageChangeRequest, text: String, completion: @escaping StoreCompletion<MessageChange>)
    /// Erases a message's text, attachments and edit history (the row stays as a tombstone, so
    /// the seq does too), with its search entries, the notification bodies and webhook bodies
    /// that quoted it; records the deletion in the audit log.
    func deleteMessage(_ r: MessageChangeRequest, completion: @escaping StoreCompletion<MessageChange>)
    /// A message's earlier texts, oldest first (admins: moderation); nil for no such message.
    func messageEdits(_ key: ConversationKey, seq: Int64, completion: @escaping StoreCompletion<(message: StoredMessage, edits: [MessageEdit])?>)
    /// Messages matching a search, newest first, only where `q.scope` allows.
    func searchMessages(_ q: SearchQuery, completion: @escaping StoreCompletion<SearchPage>)
    /// Messages and notifications held in the store now (kept counts, not a scan).
    func storedTotals(completion: @escaping StoreCompletion<StoredTotals>)
    /// The store's own counters now (cheap, from any thread; no storage access).
    var statistics: StoreStatistics { get }
    /// The epoch of this store's message streams (read once at open): seqs are positions in it,
    /// and a `since` given with another epoch means the client's positions are from elsewhere.
    var epoch: String { get }

    /// Finishes queued writes, checkpoints, and stops the database threads.
    func close()
}

extension Store {
    /// Every message, notes included (the staff's and the backend's view).
    public func messages(_ key: ConversationKey, before: Int64?, limit: Int, completion: @escaping StoreCompletion<MessagePage>) {
        messages(key, before: before, limit: limit, withNotes: true, completion: completion)
    }

    public func appendMessage(_ m: NewMessage, completion: @escaping StoreCompletion<AppendResult>) {
        appendMessage(m, notify: [], completion: completion)
    }
}

extension Store {
    /// The platform and bots write without reading: their messages move no read mark of theirs.
    static func keepsNoReadMark(_ role: String) -> Bool { role == "system" || role == Vocabulary.botRole }
}

/// A comma-separated column list with each column prefixed by a table alias (`seq, id` → `m.seq, m.id`).
func qualified(_ columns: String, as alias: String) -> String {
    columns.split(separator: ",").map { "\(alias)." + $0.drop(while: { $0 == " " }) }.joined(separator: ", ")
}

/// Blocks the calling thread until a store call completes: for threads that may block (start-up
/// on the main thread, the mailer's own thread, tests), never for an event loop.
public func waitForStore<T: Sendable>(_ call: (@escaping StoreCompletion<T>) -> Void) -> Result<T, StoreError> {
    let box = Locked<Result<T, StoreError>?>(nil)
    let done = DispatchSemaphore(value: 0)
    call { r in box.withLock { $0 = r }; done.signal() }
    done.wait()
    return box.withLock { $0 } ?? .failure(.unavailable("no answer"))
}
