import Foundation
import Core
import Protocol

// The Store on SQLite: a WAL database file in the data folder, one writer thread with group
// commit, a few reader threads. synchronous=FULL by default: the WAL is fsynced once per group
// commit, before its acks leave, so an acknowledged message survives a power cut
// (`--durability normal`: a killed process, not a power cut; docs/hardening.md "Crash safety").
public final class SQLiteStore: Store {
    private let writer: DatabaseWriter
    private let readers: DatabaseReaders
    public let path: String
    /// The words of a `messages` notification; the hub passes Notifications'
    /// `MessageNotificationText.wording`.
    let messageWording: MessageNotificationWording
    public let epoch: String
    public let webhookOutbox = WebhookOutbox()
    let searchMerger: SearchMerger

    /// How an acknowledged write survives: `full` (the default) fsyncs the WAL at every commit,
    /// so an ack survives a power cut; `normal` only at checkpoints, so an ack survives a crash
    /// of the process but the last commits can be lost with the machine's power (`--durability`).
    public enum Durability: String, Sendable, CaseIterable {
        case full, normal
    }

    /// `searchIndex` false: sends and edits add nothing to the search index (`--search-index off`).
    public init(path: String, readers readerCount: Int = 2, now: Int64,
                messageWording: @escaping MessageNotificationWording, searchIndex: Bool = true,
                durability: Durability = .full) throws {
        self.path = path
        self.messageWording = messageWording
        let merger = SearchMerger()
        searchMerger = merger
        writer = try DatabaseWriter(path: path) { db in
            let mode = try db.scalarText("PRAGMA journal_mode = WAL")
            guard mode?.lowercased() == "wal" else {
                throw SQLiteError(code: 1, message: "could not switch to WAL (journal_mode is \(mode ?? "?"))", sql: nil)
            }
            db.resetStatements()
            // secure_delete: a deleted message's text is overwritten where it was, not only
            // unlinked (docs/protocol.md "Edit and delete": erased, not hidden).
            // One fsync per group commit in full: its cost is per batch, not per message.
            try db.execute("PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL"); PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON")
            try Migrations.migrate(db, now: now)
            db.searchIndexing = searchIndex
            (db.searchTail, merger.leftUnmerged) = (merger, try Self.searchTailSize(db))
        }
        do {
            epoch = try Self.readEpoch(path: path)
            readers = try DatabaseReaders(path: path, count: readerCount)
            startSearchMerger()
        } catch {
            writer.close() // its thread, its connection and the checkpointer's
            throw error
        }
    }

    /// Gives the store at `path` a new epoch (an operator's step after restoring a backup) and
    /// returns it. A running hub keeps serving the epoch it read at start until it restarts.
    public static func newEpoch(path: String) throws -> String {
        let db = try SQLiteConnection(path: path)
        try db.execute("PRAGMA busy_timeout = 5000")
        try Migrations.migrate(db, now: Int64(Date().timeIntervalSince1970 * 1000))
        try db.execute("UPDATE store_meta SET value = lower(hex(randomblob(8))) WHERE name = 'epoch'")
        return try readEpoch(path: path)
    }

    /// The epoch the migrations stored (a short-lived connection, before any thread uses the store).
    private static func readEpoch(path: String) throws -> String {
        let db = try SQLiteConnection(path: path, readOnly: true)
        guard let epoch = try db.scalarText("SELECT value FROM store_meta WHERE name = 'epoch'") else {
            throw SQLiteError(code: 1, message: "the store has no epoch (store_meta)", sql: nil)
        }
        return epoch
    }

    /// Finishes the queued reads and writes (no merge starts after this), checkpoints the WAL and closes
    /// every connection (the readers' first, so the writer's, the last, leaves the database as one file).
    public func close() {
        searchMerger.stop()
        readers.close()
        writer.close()
    }

    var writerStats: WriterStatsSnapshot {
        let s = writer.stats
        return WriterStatsSnapshot(batches: s.batches.load(ordering: .relaxed), jobs: s.jobs.load(ordering: .relaxed),
                                   largestBatch: s.largestBatch.load(ordering: .relaxed), queued: writer.queueDepth,
                                   checkpoints: s.checkpoints.load(ordering: .relaxed), writerCheckpoints: s.writerCheckpoints.load(ordering: .relaxed))
    }

    public var statistics: StoreStatistics { Self.statistics(writerStats) }

    /// The writer's counters as the bridge renders them (/v1/stats keys, metric names and help).
    static func statistics(_ w: WriterStatsSnapshot) -> StoreStatistics {
        let checkpoints = "WAL checkpoints, by who ran them: the checkpointer thread, or the writer starting the WAL over past its cap."
        return StoreStatistics([
            .init(jsonKey: "batches", metricName: "montrose_writer_batches_total",
                  help: "Transactions committed by the database writer.", kind: .counter, value: w.batches),
            .init(jsonKey: "jobs", metricName: "montrose_writer_jobs_total",
                  help: "Jobs run by the database writer.", kind: .counter, value: w.jobs),
            .init(jsonKey: "largest_batch", metricName: "montrose_writer_largest_batch",
                  help: "Most jobs in one writer transaction so far.", kind: .gauge, value: w.largestBatch),
            .init(jsonKey: "queued", metricName: "montrose_writer_queue",
                  help: "Jobs waiting for the database writer.", kind: .gauge, value: w.queued),
            .init(jsonKey: "checkpoints", metricName: "montrose_db_checkpoints_total", labels: #"by="checkpointer""#,
                  help: checkpoints, kind: .counter, value: w.checkpoints),
            .init(jsonKey: "writer_checkpoints", metricName: "montrose_db_checkpoints_total", labels: #"by="writer""#,
                  help: checkpoints, kind: .counter, value: w.writerCheckpoints),
        ])
    }

    // MARK: plumbing
    /// `background`: bulk bookkeeping nobody waits for, written one job per transaction behind
    /// everything else (see `JobQueue`).
    func write<T: Sendable>(background: Bool = false, _ body: @escaping @Sendable (SQLiteConnection) throws -> T,
                                    _ completion: @escaping StoreCompletion<T>) {
        let job = DatabaseJob(run: { db in
            let result: Result<T, StoreError>
            do { result = .success(try body(db)) } catch { result = .failure(Self.storeError(error)) }
            let failed = if case .failure = result { true } else { false }
            return ({ committed in completion(committed ? result : .failure(.unavailable("storage commit failed"))) }, failed)
        }, abandon: { completion(.failure(.unavailable("storage commit failed"))) })
        if !writer.submit(job, background: background) { completion(.failure(.closing)) }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T,
                                   _ completion: @escaping StoreCompletion<T>) {
        let job = DatabaseJob(run: { db in
            let result: Result<T, StoreError>
            do { result = .success(try body(db)) } catch { result = .failure(Self.storeError(error)) }
            return ({ _ in completion(result) }, false)
        }, abandon: { completion(.failure(.unavailable("storage unavailable"))) })
        if !readers.submit(job) { completion(.failure(.closing)) }
    }

    static func storeError(_ error: Error) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? SQLiteError, e.isConstraintViolation { return .conflict(e.message) }
        return .internalError("\(error)")
    }

    /// The conversation's row id, created on first use.
    static func conversationID(_ db: SQLiteConnection, _ key: ConversationKey, create: Bool) throws -> Int64? {
        try conversation(db, key, create: create, sender: "")?.id
    }

    /// The conversation's row id, whether its last message came from someone other than
    /// `sender` (compared in SQL: a send reads no string back), and whether this call created it.
    static func conversation(_ db: SQLiteConnection, _ key: ConversationKey, create: Bool,
                                     sender: String) throws -> ConversationRow? {
        let findSQL = """
            SELECT id, COALESCE(last_sender != ?3, 0), last_seq, status = 'resolved', cycle_opened_at IS NULL, queued_at IS NULL
            FROM conversations WHERE service = ?1 AND client_id = ?2
            """
        let find = try db.statement(findSQL)
        try find.bind(.text(key.service), .text(key.clientId), .text(sender))
        if try find.step() { return ConversationRow(find, created: false) }
        guard create else { return nil }
        // A writer that created it meanwhile wins: no row back, and the row is read again.
        let insert = try db.statement("""
            INSERT INTO conversations (service, client_id) VALUES (?1, ?2)
            ON CONFLICT (service, client_id) DO NOTHING RETURNING id
            """)
        try insert.bind(.text(key.service), .text(key.clientId))
        if try insert.step() {
            let id = insert.int(0)
            try insert.run()
            return ConversationRow(id: id, followsOthers: false, created: true, lastSeq: 0,
                                   resolved: false, cycleUnopened: true, unqueued: true)
        }
        let again = try db.statement(findSQL) // reset for new bindings
        try again.bind(.text(key.service), .text(key.clientId), .text(sender))
        guard try again.step() else { return nil }
        return ConversationRow(again, created: false)
    }

    static let messageColumns = "seq, id, sender_id, sender_role, sender_name, text, ts, client_msg_id, internal, attachments, edited_at, deleted_at"

    /// `messageColumns` of the messages table aliased `m` (joined with its conversation), and how
    /// many they are: the columns a join reads after them start at `messageColumnCount`.
    static let qualifiedMessageColumns = qualified(messageColumns, as: "m")
    static let messageColumnCount = Int32(messageColumns.split(separator: ",").count)

    static func message(_ s: SQLiteStatement, _ key: ConversationKey) -> StoredMessage {
        StoredMessage(conversation: key, seq: s.int(0), msgId: s.int(1), senderId: s.text(2), senderRole: s.text(3),
                      senderName: s.text(4), text: s.text(5), ts: s.int(6), clientMsgId: s.optionalText(7),
                      isInternal: s.int(8) != 0, attachments: AttachmentsColumn.decode(s.optionalText(9)),
                      editedAt: s.optionalInt(10), isDeleted: s.optionalInt(11) != nil)
    }

    // MARK: users

    public func upsertUser(_ user: UserRecord, now: Int64, completion: @escaping StoreCompletion<UserRecord>) {
        write({ db in
            try db.statement("""
                INSERT INTO users (id, role, name, email, services, created_at, updated_at)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)
                ON CONFLICT (id) DO UPDATE SET role = ?2, name = ?3, email = COALESCE(?4, email),
                    services = ?5, updated_at = ?6
                """)
                .bind(.text(user.id), .text(user.role), .text(user.name), .of(user.email),
                      .of(user.services?.joined(separator: ",")), .int(now)).run()
            return user
        }, completion)
    }

    public func user(_ id: String, completion: @escaping StoreCompletion<UserRecord?>) {
        read({ db in
            let s = try db.statement("SELECT id, role, name, email, services FROM users WHERE id = ?1")
            try s.bind(.text(id))
            guard try s.step() else { return nil }
            return UserRecord(id: s.text(0), role: s.text(1), name: s.text(2), email: s.optionalText(3),
                              services: s.optionalText(4).map { $0.split(separator: ",").map(String.init) })
        }, completion)
    }

    // MARK: assignments

    public func setAssignment(_ a: Assignment, now: Int64, completion: @escaping StoreCompletion<String?>) {
        let webhooks = webhookOutbox
        write({ db in
            let old = try db.statement("SELECT agent_id FROM assignments WHERE service = ?1 AND client_id = ?2")
            try old.bind(.text(a.conversation.service), .text(a.conversation.clientId))
            let previous = try old.step() ? old.text(0) : nil
            try db.statement("""
                INSERT INTO assignments (service, client_id, agent_id, created_at) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT (service, client_id) DO UPDATE SET agent_id = ?3, created_at = ?4
                """).bind(.text(a.conversation.service), .text(a.conversation.clientId), .text(a.agentId), .int(now)).run()
            try Self.dequeue(db, a.conversation, agent: a.agentId, now: now)
            if previous != a.agentId {
                _ = try webhooks.enqueue(db, .assignmentChanged, orderingKey: a.conversation.channel, now: now) {
                    $0.assignmentEventFields(a.conversation, agent: a.agentId, previous: previous)
                }
            }
            return previous
        }, completion)
    }

    public func removeAssignment(_ key: ConversationKey, completion: @escaping StoreCompletion<String?>) {
        let webhooks = webhookOutbox
        write({ db in
            let s = try db.statement("DELETE FROM assignments WHERE service = ?1 AND client_id = ?2 RETURNING agent_id")
            try s.bind(.text(key.service), .text(key.clientId))
            let removed = try s.step() ? s.text(0) : nil
            try s.run()
            guard let removed else { return nil }
            let now = wallMillis()
            _ = try webhooks.enqueue(db, .assignmentChanged, orderingKey: key.channel, now: now) {
                $0.assignmentEventFields(key, agent: nil, previous: removed)
            }
            try Self.requeue(db, key, now: now, webhooks: webhooks)
            return removed
        }, completion)
    }

    public func allAssignments(completion: @escaping StoreCompletion<[Assignment]>) {
        read({ db in
            let s = try db.statement("SELECT service, client_id, agent_id FROM assignments")
            var out: [Assignment] = []
            while try s.step() {
                out.append(Assignment(conversation: ConversationKey(service: s.text(0), clientId: s.text(1)), agentId: s.text(2)))
            }
            return out
        }, completion)
    }

    // MARK: messages

    public func appendMessage(_ m: NewMessage, notify: [String], completion: @escaping StoreCompletion<AppendResult>) {
        let wording = messageWording, webhooks = webhookOutbox
        write({ db in
            guard let row = try Self.conversation(db, m.conversation, create: true, sender: m.sender.id) else {
                throw StoreError.internalError("conversation not created")
            }
            let conversation = row.id
            // The next seq comes from the row itself, read in this transaction: gap-free even
            // if a later job in the batch rolls back. A (sender, client_msg_id) stored before,
            // by this writer or a concurrent one, inserts nothing.
            let seq = row.lastSeq + 1
            let insert = try db.statement("""
                INSERT INTO messages (conversation_id, seq, sender_id, sender_role, sender_name, text, ts, client_msg_id, internal, attachments)
                VALUES (?1, ?10, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                ON CONFLICT (sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL DO NOTHING
                """)
            try insert.bind(.int(conversation), .text(m.sender.id), .text(m.sender.role), .text(m.sender.name),
                            .text(m.text), .int(m.ts), .of(m.clientMsgId), .int(m.isInternal ? 1 : 0),
                            .of(AttachmentsColumn.encode(m.attachments)), .int(seq))
            try insert.run()
            guard db.changes == 1 else {
                return try Self.firstMessage(db, m, unusedConversation: row.created ? conversation : nil)
            }
            let msgId = db.lastInsertRowID
            try db.statement("UPDATE conversations SET last_seq = ?2, last_ts = ?3, last_sender = ?4 WHERE id = ?1")
                .bind(.int(conversation), .int(seq), .int(m.ts), .text(m.sender.id)).run()
            let stored = StoredMessage(conversation: m.conversation, seq: seq, msgId: msgId,
                                       senderId: m.sender.id, senderRole: m.sender.role, senderName: m.sender.name,
                                       text: m.text, ts: m.ts, clientMsgId: m.clientMsgId, isInternal: m.isInternal,
                                       attachments: m.attachments)
            try Self.addToSearchTail(db, msgId: msgId, conversation: conversation, text: m.text)
            try webhooks.enqueue(db, .messageCreated, orderingKey: m.conversation.channel, now: m.ts) { $0.messageFields(stored) }
            let desk = m.isFromClient ? try Self.clientWrote(db, row, stored, webhooks: webhooks) : DeskChange()
            // Recipients not watching the conversation get (or see updated) their one
            // `messages` notification for it, in the same transaction; so do the users told
            // of a newly queued conversation because none of them is online.
            var recipients = notify
            if desk.queued { recipients += try Self.users(db, roles: m.queueNotifyRoles) }
            var notified: [DeliveredNotification] = []
            var seen: Set<String> = [m.sender.id]
            for user in recipients where seen.insert(user).inserted {
                notified.append(try Self.noteMessage(db, stored, for: user, wording: wording))
            }
            // Whoever replies has read what came before: only a send that follows someone else's
            // message can move the sender's mark (own messages never count as unread).
            let marks = row.followsOthers && !Self.keepsNoReadMark(m.sender.role)
            let senderRead = marks ? try Self.moveSenderMark(db, stored, conversation: conversation) : nil
            return AppendResult(message: stored, duplicate: false, notifications: notified, senderRead: senderRead,
                                senderMarkMoved: marks, reopened: desk.reopened, queued: desk.queued)
        }, completion)
    }

    /// The message first stored with `m`'s (sender, client_msg_id), in whichever conversation,
    /// as a duplicate. `unusedConversation`: created by this send, which stores nothing in it
    /// after all, so it goes again.
    private static func firstMessage(_ db: SQLiteConnection, _ m: NewMessage, unusedConversation: Int64?) throws -> AppendResult {
        if let unusedConversation {
            try db.statement("DELETE FROM conversations WHERE id = ?1").bind(.int(unusedConversation)).run()
        }
        let first = try db.statement("""
            SELECT \(Self.qualifiedMessageColumns), c.service, c.client_id
            FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.sender_id = ?1 AND m.client_msg_id = ?2
            """)
        try first.bind(.text(m.sender.id), .of(m.clientMsgId))
        guard try first.step() else { throw StoreError.internalError("a duplicate with no first message") }
        let key = ConversationKey(service: first.text(Self.messageColumnCount), clientId: first.text(Self.messageColumnCount + 1))
        return AppendResult(message: Self.message(first, key), duplicate: true)
    }

    public func messages(_ key: ConversationKey, after: Int64, limit: Int, completion: @escaping StoreCompletion<MessagePage>) {
        read({ db in
            guard let conversation = try Self.conversationID(db, key, create: false) else { return .empty }
            return try Self.messages(db, key, conversation: conversation, after: after, limit: limit)
        }, completion)
    }

    /// Messages with seq > `after` in one conversation, ascending, at most `limit`.
    static func messages(_ db: SQLiteConnection, _ key: ConversationKey, conversation: Int64, after: Int64, limit: Int) throws -> MessagePage {
        let s = try db.statement("SELECT \(Self.messageColumns) FROM messages WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq ASC LIMIT ?3")
        try s.bind(.int(conversation), .int(after), .int(Int64(limit + 1)))
        var out: [StoredMessage] = []
        while try s.step() { out.append(Self.message(s, key)) }
        let more = out.count > limit
        if more { out.removeLast() }
        return MessagePage(messages: out, more: more)
    }

    public func messages(_ key: ConversationKey, before: Int64?, limit: Int, withNotes: Bool,
                         completion: @escaping StoreCompletion<MessagePage>) {
        read({ db in
            guard let conversation = try Self.conversationID(db, key, create: false) else { return .empty }
            let s = try db.statement("""
                SELECT \(Self.messageColumns) FROM messages WHERE conversation_id = ?1 AND seq < ?2 AND (?4 OR internal = 0)
                ORDER BY seq DESC LIMIT ?3
                """)
            try s.bind(.int(conversation), .int(before ?? Int64.max), .int(Int64(limit + 1)), .int(withNotes ? 1 : 0))
            var out: [StoredMessage] = []
            while try s.step() { out.append(Self.message(s, key)) }
            let more = out.count > limit
            if more { out.removeLast() }
            return MessagePage(messages: out.reversed(), more: more)
        }, completion)
    }

    public func lastSeq(_ key: ConversationKey, completion: @escaping StoreCompletion<Int64>) {
        read({ db in
            let s = try db.statement("SELECT last_seq FROM conversations WHERE service = ?1 AND client_id = ?2")
            try s.bind(.text(key.service), .text(key.clientId))
            return try s.step() ? s.int(0) : 0
        }, completion)
    }

    public func lastSeqs(_ keys: [ConversationKey], completion: @escaping StoreCompletion<[ConversationKey: Int64]>) {
        read({ db in
            let s = try db.statement("SELECT last_seq FROM conversations WHERE service = ?1 AND client_id = ?2")
            var out: [ConversationKey: Int64] = [:]
            for key in keys where out[key] == nil {
                s.reset()
                try s.bind(.text(key.service), .text(key.clientId))
                out[key] = try s.step() ? s.int(0) : 0
            }
            return out
        }, completion)
    }

    public func conversationState(_ key: ConversationKey, messagesAfter: Int64?, limit: Int,
                                  completion: @escaping StoreCompletion<ConversationState>) {
        read({ db in
            // The statement stays open (not reset) until the job ends: one read transaction,
            // so the row, the marks and the page are one snapshot.
            let s = try db.statement("SELECT id, last_seq FROM conversations WHERE service = ?1 AND client_id = ?2")
            try s.bind(.text(key.service), .text(key.clientId))
            guard try s.step() else { return ConversationState(lastSeq: 0, readMarks: [:], page: .empty) }
            let id = s.int(0), last = s.int(1)
            let marks = try db.statement("SELECT user_id, seq FROM read_marks WHERE conversation_id = ?1")
            try marks.bind(.int(id))
            var out: [String: Int64] = [:]
            while try marks.step() { out[marks.text(0)] = marks.int(1) }
            let page = try messagesAfter.map { try Self.messages(db, key, conversation: id, after: $0, limit: limit) } ?? .empty
            return ConversationState(lastSeq: last, readMarks: out, page: page)
        }, completion)
    }

    // MARK: stats

    public func storedTotals(completion: @escaping StoreCompletion<StoredTotals>) {
        read({ db in
            let s = try db.statement("SELECT name, value FROM totals")
            var totals = StoredTotals(messages: 0, notifications: 0)
            while try s.step() {
                switch s.text(0) {
                case "messages": totals.messages = Int(s.int(1))
                case "notifications": totals.notifications = Int(s.int(1))
                default: break
                }
            }
            return totals
        }, completion)
    }
}
