import COpenSSL

// What `montrose-hub migrate` copies: every table of the SQLite schema (Migrations.swift) that
// holds data, column by column into PGSchema's table of the same name. Not copied: the
// schema_migrations of each side (each store records its own), and SQLite's `totals` (derived:
// PostgreSQL's striped totals are kept by its own triggers as the rows go in). Columns only
// PostgreSQL has keep their defaults: fan-out and outbox leases (NULL: claimable at once). The
// store's epoch is a row of `store_meta`, copied like the rest.

/// One column as both stores hold it. `int` columns are INTEGER on SQLite and bigint/integer
/// on PostgreSQL; `bool` columns INTEGER 0/1 on SQLite and boolean on PostgreSQL (rendered
/// `true`/`false` for the checksums); `text` columns are TEXT on both.
struct MigrationColumn: Sendable {
    enum Kind: Sendable { case int, bool, text }
    let name: String
    let kind: Kind
}

struct MigrationTable: Sendable {
    let name: String
    /// In the order rendered for the checksum. `users.rowid` is SQLite's implicit rowid and
    /// PostgreSQL's explicit column (the order fan-outs walk), so it is copied like any other.
    let columns: [MigrationColumn]
    /// The columns (indexes into `columns`) PostgreSQL stores escaped together when any of
    /// them holds U+0000, flagged by the row's `text_escaped` (PostgresStore.storable).
    let escaped: [Int]
    /// A unique key: the copy and both checksums walk rows in this order.
    let key: [String]
    /// The identity column whose sequence must continue past the copied values.
    let identity: String?

    init(_ name: String, _ columns: [(String, MigrationColumn.Kind)], escaped: [String] = [], key: [String], identity: String? = nil) {
        self.name = name
        self.columns = columns.map { MigrationColumn(name: $0.0, kind: $0.1) }
        self.escaped = escaped.compactMap { e in columns.firstIndex { $0.0 == e } }
        self.key = key
        self.identity = identity
    }

    /// The PostgreSQL columns written: the logical ones, and `text_escaped` when the table has it.
    var targetColumns: [String] { columns.map(\.name) + (escaped.isEmpty ? [] : ["text_escaped"]) }

    /// The SQLite query of every row in key order (no collation: SQLite compares text as bytes).
    var sourceSelect: String {
        "SELECT \(columns.map(\.name).joined(separator: ", ")) FROM \(name) ORDER BY \(key.joined(separator: ", "))"
    }

    /// The PostgreSQL query of every row in the same order: text keys compared as bytes
    /// (COLLATE "C"), as SQLite does, whatever the database's collation.
    var targetSelect: String {
        let order = key.map { k in columns.first { $0.name == k }?.kind == .text ? "\(k) COLLATE \"C\"" : k }
        return "SELECT \(targetColumns.joined(separator: ", ")) FROM \(name) ORDER BY \(order.joined(separator: ", "))"
    }

    /// Escapes a source row for PostgreSQL: the row's values as stored there, and `text_escaped`.
    func storable(_ row: [String?]) -> [String?] {
        guard !escaped.isEmpty else { return row }
        let stored = PostgresStore.storable(escaped.map { row[$0] })
        var out = row
        for (k, i) in escaped.enumerated() { out[i] = stored.texts[k] }
        return out + [stored.escaped ? "true" : "false"]
    }

    /// The logical row of a PostgreSQL row read by `targetSelect` (escaped texts decoded).
    func original(_ stored: [String?]) -> [String?] {
        guard !escaped.isEmpty else { return stored }
        var row = Array(stored.dropLast())
        if stored.last == "t" { for i in escaped { row[i] = row[i].map { PostgresStore.original($0, escaped: true) } } }
        return row
    }

    /// SQLite tables not copied (see the file's header); SQLite's own (`sqlite_…`) neither.
    /// The search index (`search_postings`, `search_documents`, `search_merge`) is derived too:
    /// PostgreSQL keeps its own, computed from the copied messages (PostgresStore.indexStoredMessages).
    static let notCopied: Set<String> = ["schema_migrations", "totals", "search_postings", "search_documents", "search_merge"]

    /// How a SQLite store's tables (name → its columns, as PRAGMA table_info lists them)
    /// differ from what is copied: tables or columns nobody would copy, or ones missing. Empty
    /// when they agree. `rowid` is implicit in SQLite: listed only when declared.
    static func sourceDifferences(_ found: [String: [String]]) -> [String] {
        var out: [String] = []
        let copied = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
        for name in found.keys.sorted() where copied[name] == nil && !notCopied.contains(name) && !name.hasPrefix("sqlite_") {
            out.append("table \(name) is not copied")
        }
        for table in all {
            guard let columns = found[table.name] else {
                out.append("table \(table.name) is missing")
                continue
            }
            let expected = table.columns.map(\.name).filter { $0 != "rowid" || columns.contains("rowid") }
            for c in columns where !expected.contains(c) { out.append("column \(table.name).\(c) is not copied") }
            for c in expected where !columns.contains(c) { out.append("column \(table.name).\(c) is missing") }
        }
        return out
    }

    static let all: [MigrationTable] = [
        MigrationTable("users", [("rowid", .int), ("id", .text), ("role", .text), ("name", .text), ("email", .text),
                                 ("services", .text), ("created_at", .int), ("updated_at", .int),
                                 ("last_seen_at", .int), ("email_bounced", .text)],
                       key: ["rowid"], identity: "rowid"),
        MigrationTable("assignments", [("service", .text), ("client_id", .text), ("agent_id", .text), ("created_at", .int)],
                       key: ["service", "client_id"]),
        MigrationTable("conversations", [("id", .int), ("service", .text), ("client_id", .text), ("last_seq", .int),
                                         ("last_ts", .int), ("last_sender", .text), ("status", .text), ("status_by", .text),
                                         ("status_at", .int), ("queued_at", .int), ("cycle_opened_at", .int)],
                       key: ["id"], identity: "id"),
        MigrationTable("messages", [("id", .int), ("conversation_id", .int), ("seq", .int), ("sender_id", .text),
                                    ("sender_role", .text), ("sender_name", .text), ("text", .text), ("ts", .int),
                                    ("client_msg_id", .text), ("internal", .bool), ("attachments", .text),
                                    ("edited_at", .int), ("deleted_at", .int)],
                       escaped: ["text"], key: ["id"], identity: "id"),
        MigrationTable("message_edits", [("id", .int), ("message_id", .int), ("text", .text), ("edited_at", .int), ("editor", .text)],
                       escaped: ["text"], key: ["id"], identity: "id"),
        MigrationTable("desk_events", [("id", .int), ("service", .text), ("client_id", .text), ("kind", .text), ("agent", .text),
                                       ("seq", .int), ("ts", .int)],
                       key: ["id"], identity: "id"),
        MigrationTable("read_marks", [("user_id", .text), ("conversation_id", .int), ("seq", .int)],
                       key: ["user_id", "conversation_id"]),
        MigrationTable("audit_log", [("id", .int), ("actor_id", .text), ("action", .text), ("target", .text), ("ts", .int)],
                       key: ["id"], identity: "id"),
        MigrationTable("notifications", [("id", .int), ("user_id", .text), ("audience", .text), ("service", .text),
                                         ("category", .text), ("title", .text), ("body", .text), ("data", .text),
                                         ("ts", .int), ("read_at", .int), ("pushed_at", .int), ("conversation", .text),
                                         ("conversation_seq", .int), ("conversation_count", .int)],
                       escaped: ["title", "body", "data"], key: ["id"], identity: "id"),
        MigrationTable("broadcast_state", [("notification_id", .int), ("user_id", .text), ("read_at", .int), ("pushed_at", .int)],
                       key: ["notification_id", "user_id"]),
        MigrationTable("fanouts", [("id", .int), ("audience", .text), ("service", .text), ("category", .text),
                                   ("title", .text), ("body", .text), ("data", .text), ("email", .text),
                                   ("last_user_rowid", .int), ("cursor", .int), ("total", .int), ("created_at", .int),
                                   ("finished_at", .int)],
                       escaped: ["title", "body", "data"], key: ["id"], identity: "id"),
        MigrationTable("outbox", [("id", .int), ("notification_id", .int), ("user_id", .text), ("mode", .text),
                                  ("status", .text), ("due_at", .int), ("attempts", .int), ("last_error", .text),
                                  ("created_at", .int), ("finished_at", .int)],
                       key: ["id"], identity: "id"),
        MigrationTable("idempotency", [("key", .text), ("fingerprint", .text), ("status", .int), ("body", .text),
                                       ("created_at", .int)],
                       key: ["key"]),
        // The epoch among them: clients keep their positions across the move.
        MigrationTable("store_meta", [("name", .text), ("value", .text)], key: ["name"]),
        // Undelivered events go on being delivered from PostgreSQL (leases copied: a lapsed
        // one is claimable at once).
        MigrationTable("webhook_events", [("seq", .int), ("event_id", .text), ("type", .text), ("ordering_key", .text),
                                          ("body", .text), ("created_at", .int), ("attempts", .int), ("next_attempt_at", .int),
                                          ("lease_node", .text), ("lease_until", .int), ("delivered_at", .int),
                                          ("given_up_at", .int), ("last_error", .text)],
                       key: ["seq"], identity: "seq"),
        MigrationTable("webhook_attempts", [("id", .int), ("event_id", .text), ("type", .text), ("attempt", .int), ("ts", .int),
                                            ("status", .int), ("error", .text), ("duration_ms", .int)],
                       key: ["id"], identity: "id"),
    ]
}

/// A table's rows rendered canonically (in key order; each value tagged with its kind and,
/// for text, its byte length) and hashed with SHA-256 as they stream past: the same rows give
/// the same digest whichever store they were read from.
final class RowChecksum {
    private let context: OpaquePointer?
    private(set) var rows = 0

    init() {
        context = EVP_MD_CTX_new()
        EVP_DigestInit_ex(context, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(context) }

    func add(_ row: [String?], _ columns: [MigrationColumn]) {
        var line = ""
        for (value, column) in zip(row, columns) {
            switch (value, column.kind) {
            case (nil, _): line += "N|"
            case (let v?, .int): line += "I\(v)|"
            case (let v?, .bool): line += "B\(v)|"
            case (let v?, .text): line += "T\(v.utf8.count):\(v)|"
            }
        }
        line += "\n"
        var bytes = Array(line.utf8)
        EVP_DigestUpdate(context, &bytes, bytes.count)
        rows += 1
    }

    /// The digest in hex; call once, at the end.
    func finish() -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        EVP_DigestFinal_ex(context, &digest, &length)
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: digest.prefix(Int(length)).flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }
}
