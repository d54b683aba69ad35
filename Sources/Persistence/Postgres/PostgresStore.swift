import Foundation
import Protocol

// The Store on PostgreSQL, for one node or several sharing one database: K writer threads with
// group commit and a commit baton (PGThreads.swift), R reader threads, the schema of
// PGSchema.swift. synchronous_commit stays the server's (on): an answer means durable.
public final class PostgresStore: Store {
    private let writers: PGWriters
    private let readers: PGReaders
    private let completions: PGCompletionThread
    /// The words of a `messages` notification; the hub passes Notifications'
    /// `MessageNotificationText.wording`.
    let messageWording: MessageNotificationWording
    public let epoch: String
    public let webhookOutbox = WebhookOutbox()
    /// Sends and edits write the message's search terms (`--search-index`; PostgresStore+Search).
    let searchIndex: Bool

    /// Connects, applies the migrations (under an advisory lock: nodes may start together) and
    /// starts the threads. `url`: a postgres:// URL or a key=value conninfo.
    public init(url: String, writers writerCount: Int = 2, readers readerCount: Int = 2, now: Int64,
                messageWording: @escaping MessageNotificationWording, searchIndex: Bool = true) throws {
        self.messageWording = messageWording
        self.searchIndex = searchIndex
        do {
            let setup = try PGConnection(url: url, statementTimeout: 120)
            defer { setup.close() }
            try PGSchema.migrate(setup, now: now)
            epoch = try Self.readEpoch(setup)
        }
        completions = PGCompletionThread()
        do {
            writers = try PGWriters(url: url, count: max(1, writerCount), completions: completions)
        } catch {
            completions.close()
            throw error
        }
        readers = PGReaders(url: url, count: max(1, readerCount))
    }

    private static func readEpoch(_ db: PGConnection) throws -> String {
        let r = try db.query("SELECT value FROM store_meta WHERE name = 'epoch'")
        guard r.count == 1 else { throw PGError(kind: .statement, message: "the store has no epoch (store_meta)") }
        return r.text(0, 0)
    }

    /// Gives the store at `url` a new epoch (an operator's step after restoring a backup) and
    /// returns it. Running nodes keep serving the epoch they read at start until they restart.
    public static func newEpoch(url: String) throws -> String {
        let db = try PGConnection(url: url, statementTimeout: 120)
        defer { db.close() }
        try PGSchema.migrate(db, now: Int64(Date().timeIntervalSince1970 * 1000))
        try db.execute("UPDATE store_meta SET value = substr(md5(random()::text || clock_timestamp()::text), 1, 16) WHERE name = 'epoch'")
        return try readEpoch(db)
    }

    /// Finishes the queued reads and writes, runs their completions, and closes every
    /// connection. Calling it again returns at once.
    public func close() {
        readers.close()
        writers.close()
        completions.close()
    }

    public var statistics: StoreStatistics {
        let s = writers.stats
        return StoreStatistics([
            .init(jsonKey: "batches", metricName: "montrose_writer_batches_total",
                  help: "Transactions run by the database writers.", kind: .counter, value: s.batches.load(ordering: .relaxed)),
            .init(jsonKey: "jobs", metricName: "montrose_writer_jobs_total",
                  help: "Jobs run by the database writers.", kind: .counter, value: s.jobs.load(ordering: .relaxed)),
            .init(jsonKey: "largest_batch", metricName: "montrose_writer_largest_batch",
                  help: "Most jobs in one writer transaction so far.", kind: .gauge, value: s.largestBatch.load(ordering: .relaxed)),
            .init(jsonKey: "queued", metricName: "montrose_writer_queue",
                  help: "Jobs waiting for a database writer.", kind: .gauge, value: writers.queued),
            .init(jsonKey: "retries", metricName: "montrose_pg_retries_total",
                  help: "Writer transactions run again after an error before COMMIT (deadlock, serialization failure, lost connection).", kind: .counter,
                  value: s.retries.load(ordering: .relaxed)),
            .init(jsonKey: "reconnects", metricName: "montrose_pg_reconnects_total",
                  help: "Writer connections opened again after one was lost.", kind: .counter, value: s.reconnects.load(ordering: .relaxed)),
            .init(jsonKey: "commit_wait_ms", metricName: "montrose_pg_commit_wait_ms_total",
                  help: "Milliseconds writers waited for the commit baton (one COMMIT in flight per node).", kind: .counter,
                  value: s.commitWaitMicros.load(ordering: .relaxed) / 1_000),
            .init(jsonKey: "commit_ms", metricName: "montrose_pg_commit_ms_total",
                  help: "Milliseconds spent in COMMIT.", kind: .counter, value: s.commitMicros.load(ordering: .relaxed) / 1_000),
        ])
    }

    // MARK: plumbing

    /// Runs `body` in a writer transaction; `completion` runs after the commit, on the
    /// completion thread, in commit order. `background`: bulk bookkeeping nobody waits for
    /// (see `JobQueue`). `lockKey`: the row the body locks first (see `PGJob.lockKey`).
    /// `unread`: the users whose unread lock the body takes (see `PGJob.unreadUsers`).
    func write<T: Sendable>(background: Bool = false, lockKey: String? = nil, unread: [String] = [],
                            _ body: @escaping @Sendable (PGConnection) throws -> T,
                            completion: @escaping StoreCompletion<T>) {
        let job = PGJob(lockKey: lockKey, unreadUsers: unread, run: { db in
            let result: Result<T, StoreError>
            do {
                result = .success(try body(db))
            } catch let e as PGError where e.isConnectionLost || e.isRetryable {
                return .infrastructure(e)
            } catch {
                result = .failure(Self.storeError(error))
            }
            let failed = if case .failure = result { true } else { false }
            return .done(completion: { committed in
                completion(committed ? result : .failure(.unavailable("storage commit failed")))
            }, failed: failed)
        }, abandon: { completion(.failure($0)) })
        if !writers.submit(job, background: background) { completion(.failure(.closing)) }
    }

    /// A write whose answer nobody waits for (audit, receipts, last-seen times).
    func writeAndForget(background: Bool = true, _ body: @escaping @Sendable (PGConnection) throws -> Void) {
        write(background: background, body, completion: { _ in })
    }

    /// Runs `body` on a reader, in one REPEATABLE READ READ ONLY transaction (one snapshot).
    func read<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T, completion: @escaping StoreCompletion<T>) {
        let job = PGJob(lockKey: nil, run: { db in
            let result: Result<T, StoreError>
            do {
                result = .success(try body(db))
            } catch let e as PGError where e.isConnectionLost {
                return .infrastructure(e)
            } catch {
                result = .failure(Self.storeError(error))
            }
            return .done(completion: { _ in completion(result) }, failed: false)
        }, abandon: { completion(.failure($0)) })
        if !readers.submit(job) { completion(.failure(.closing)) }
    }

    static func storeError(_ error: Error) -> StoreError {
        if let e = error as? StoreError { return e }
        // A lost connection never gets here: `write` and `read` answer it as infrastructure.
        if let e = error as? PGError, e.isConstraintViolation { return .conflict(e.message) }
        return .internalError("\(error)")
    }

    // MARK: message text

    /// The one NUL rule. PostgreSQL text cannot hold U+0000: the texts of one row flagged by
    /// its `text_escaped` are stored escaped (`\` doubled, U+0000 as `\0`) all together when
    /// any of them holds a U+0000, and as they are otherwise.
    static func storable(_ texts: [String?]) -> (texts: [String?], escaped: Bool) {
        guard texts.contains(where: { $0?.utf8.contains(0) == true }) else { return (texts, false) }
        return (texts.map { $0.map(escaped) }, true)
    }

    /// `storable` of a row with one flagged text (a message's).
    static func storable(_ text: String) -> (text: String, escaped: Bool) {
        let stored = storable([text])
        return (stored.texts[0] ?? text, stored.escaped)
    }

    /// `text` with `\` doubled and U+0000 as `\0` (what `original` reads back).
    static func escaped(_ text: String) -> String {
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\u{0}": out += "\\0"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func original(_ stored: String, escaped: Bool) -> String {
        guard escaped else { return stored }
        var out = ""
        var pendingBackslash = false
        for c in stored.unicodeScalars {
            if pendingBackslash {
                out.unicodeScalars.append(c == "0" ? "\u{0}" : c)
                pendingBackslash = false
            } else if c == "\\" {
                pendingBackslash = true
            } else {
                out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static let messageColumns = "seq, id, sender_id, sender_role, sender_name, text, ts, client_msg_id, text_escaped, internal, attachments, edited_at, deleted_at"

    static func message(_ r: PGRows, _ row: Int, _ key: ConversationKey) -> StoredMessage {
        StoredMessage(conversation: key, seq: r.int(row, 0), msgId: r.int(row, 1), senderId: r.text(row, 2),
                      senderRole: r.text(row, 3), senderName: r.text(row, 4),
                      text: original(r.text(row, 5), escaped: r.bool(row, 8)), ts: r.int(row, 6),
                      clientMsgId: r.optionalText(row, 7), isInternal: r.bool(row, 9),
                      attachments: AttachmentsColumn.decode(r.optionalText(row, 10)), editedAt: r.optionalInt(row, 11),
                      isDeleted: !r.isNull(row, 12))
    }
}
