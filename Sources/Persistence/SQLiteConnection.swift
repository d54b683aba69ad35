import CSQLite
import Core
import Foundation

// One SQLite connection. A final class because it owns the sqlite3 handle (closed in deinit);
// not Sendable: it lives on exactly one thread (the writer's or one reader's). Statements are
// prepared once per connection and cached by their SQL text; every value is bound, never
// spliced into SQL.
public final class SQLiteConnection {
    let handle: OpaquePointer
    private var cache: [String: SQLiteStatement] = [:]
    /// Statements handed out since the last `resetStatements` (only these can be mid-row).
    private var used: [SQLiteStatement] = []
    /// The commit hook's closure, kept alive as long as SQLite may call it.
    private var walHook: WALHook?
    /// The writer adds messages' words to the search index (`--search-index`; SQLiteStore+Search).
    var searchIndexing = true
    /// The writer's: told of every document written to the search index's tail.
    var searchTail: SearchMerger?

    /// Process-wide settings, made once before the first connection opens. Refused only if
    /// something used SQLite before: the hub still works, at a mutex per allocation, so say so.
    private static let configured: Void = {
        let rc = montrose_sqlite3_memory_statistics_off()
        if rc != SQLITE_OK {
            Log.error("sqlite_setting_refused", ["setting": "memory statistics off", "code": "\(rc)",
                                                 "effect": "every SQLite allocation takes a process-wide mutex"])
        }
    }()

    public init(path: String, readOnly: Bool = false) throws(SQLiteError) {
        Self.configured
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: "\(message) (\(path))", sql: nil)
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, Self.busyTimeoutMs)
    }

    deinit {
        used.removeAll()
        cache.removeAll() // statements finalize before the connection closes
        sqlite3_close_v2(handle)
    }

    /// Resets every cached statement. A statement left on a row keeps its transaction open:
    /// a COMMIT would fail, and a reader would keep seeing an old snapshot. Called whenever a
    /// unit of work ends.
    public func resetStatements() {
        for s in used { s.reset() }
        used.removeAll(keepingCapacity: true)
    }

    /// Replaces SQLite's automatic checkpoint (which runs inside the committing call) with
    /// `body`, told after every commit how many pages the WAL now holds.
    func onCommit(_ body: @escaping (_ walPages: Int) -> Void) {
        let hook = WALHook(body)
        walHook = hook
        sqlite3_wal_hook(handle, { context, _, _, pages in
            if let context { Unmanaged<WALHook>.fromOpaque(context).takeUnretainedValue().body(Int(pages)) }
            return SQLITE_OK
        }, Unmanaged.passUnretained(hook).toOpaque())
    }

    /// A checkpoint (`SQLITE_CHECKPOINT_…`); returns SQLite's code (SQLITE_BUSY when a lock
    /// it needs stayed taken through the busy timeout). Unlike `PRAGMA wal_checkpoint`, which
    /// reports a busy checkpoint as a result row, not as an error.
    func checkpoint(_ mode: Int32) -> Int32 {
        sqlite3_wal_checkpoint_v2(handle, nil, mode, nil, nil)
    }

    /// The same without waiting for a lock: what another connection holds (a checkpoint in
    /// progress, a reader in the WAL) makes it return SQLITE_BUSY at once instead of sleeping
    /// in the busy handler.
    func checkpointWithoutWaiting(_ mode: Int32) -> Int32 {
        sqlite3_busy_timeout(handle, 0)
        defer { sqlite3_busy_timeout(handle, Self.busyTimeoutMs) }
        return checkpoint(mode)
    }

    /// How long a statement waits for a lock another connection holds.
    static let busyTimeoutMs: Int32 = 5_000

    /// Runs SQL without results (several statements allowed; no parameters).
    public func execute(_ sql: String) throws(SQLiteError) {
        var error: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &error)
        if rc != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(error)
            throw SQLiteError(code: rc, message: message, sql: sql)
        }
    }

    /// A cached prepared statement, reset and with its bindings cleared.
    public func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let s = cache[sql] {
            s.reset()
            used.append(s)
            return s
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql) }
        let s = SQLiteStatement(stmt, connection: self, sql: sql)
        cache[sql] = s
        used.append(s)
        return s
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            resetStatements()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The single value of a one-row, one-column PRAGMA or query.
    public func scalarText(_ sql: String) throws(SQLiteError) -> String? {
        let s = try statement(sql)
        return try s.step() ? s.text(0) : nil
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    func error(_ rc: Int32, _ sql: String?) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }
}

/// One prepared statement, owned by its connection's cache.
public final class SQLiteStatement {
    private let stmt: OpaquePointer
    private unowned let connection: SQLiteConnection
    let sql: String

    init(_ stmt: OpaquePointer, connection: SQLiteConnection, sql: String) {
        self.stmt = stmt
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(stmt) }

    func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    /// Binds values to ?1, ?2, … in order. Returns self for chaining.
    @discardableResult
    public func bind(_ values: SQLiteValue...) throws(SQLiteError) -> SQLiteStatement {
        try bind(values)
    }

    @discardableResult
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) -> SQLiteStatement {
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .int(let n): rc = sqlite3_bind_int64(stmt, index, n)
            case .double(let d): rc = sqlite3_bind_double(stmt, index, d)
            case .text(let s):
                let copy = s
                // withCString: never a null pointer, so "" binds as '' rather than NULL.
                rc = copy.withCString { montrose_sqlite3_bind_text(stmt, index, $0, Int32(s.utf8.count)) }
            }
            guard rc == SQLITE_OK else { throw connection.error(rc, sql) }
        }
        return self
    }

    /// Advances; true when a row is available.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(stmt)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, sql)
        }
    }

    /// Runs to completion, ignoring rows.
    public func run() throws(SQLiteError) {
        while try step() {}
    }

    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }
    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(stmt, column) == SQLITE_NULL }
    public func text(_ column: Int32) -> String {
        guard let p = sqlite3_column_text(stmt, column) else { return "" }
        let n = Int(sqlite3_column_bytes(stmt, column))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }
    public func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
    public func optionalInt(_ column: Int32) -> Int64? { isNull(column) ? nil : int(column) }
}

public enum SQLiteValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)

    public static func of(_ s: String?) -> SQLiteValue { s.map { .text($0) } ?? .null }
    public static func of(_ n: Int64?) -> SQLiteValue { n.map { .int($0) } ?? .null }
}

/// The closure behind `onCommit`, passed to SQLite as an opaque pointer.
private final class WALHook {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
