import CSQLite
import Glibc

// `montrose-hub migrate --from sqlite:PATH --to postgres://…`: copies a stopped hub's SQLite
// store into PostgreSQL and proves the copy.
// - The source is opened read-only, in one read transaction (one snapshot). A hub holding the
//   file open (another process's SQLite lock on its shared-memory file) is refused: the hub
//   must be stopped, or what it writes after the snapshot would be lost.
// - The source's tables and columns must be exactly those MigrationTable.all copies (its
//   documented exclusions aside): a column this hub does not know would otherwise be dropped
//   silently, and the verify (over the copied columns) would still pass.
// - The target's schema is made by PGSchema.migrate; then everything happens in one
//   transaction: refuse if any table holds data, copy each table in key order in multi-row
//   INSERTs of `batchRows` rows (ids kept), set every identity sequence past the copied ids,
//   verify, and COMMIT only when every table matches. An interrupted or failed migration
//   leaves the target with no rows (at most the empty schema).
// - Verify: per table, the row count and a SHA-256 over the rows rendered canonically in key
//   order (RowChecksum), computed here from both stores' rows (the source's as it is copied),
//   so identical data renders identically by construction. Rows stream through both sides in pages: memory stays
//   bounded by a page, whatever the table's size.

/// One table's comparison.
public struct MigrationTableReport: Sendable, Equatable {
    public let table: String
    public let sourceRows: Int
    public let targetRows: Int
    public let sourceChecksum: String
    public let targetChecksum: String
    public var matches: Bool { sourceRows == targetRows && sourceChecksum == targetChecksum }
}

public enum StoreMigrationError: Error, CustomStringConvertible, Equatable {
    case sourceMissing(String)
    case sourceInUse(String)
    case sourceSchema(found: Int, expected: Int)
    /// The SQLite store's tables or columns differ from what this hub copies.
    case sourceTables([String])
    case targetNotEmpty(table: String)
    case copyFailed(table: String, reason: String)
    /// The verify after copying found `table` different: nothing was committed.
    case mismatch(table: String)

    public var description: String {
        switch self {
        case .sourceMissing(let path): "no SQLite store at \(path)"
        case .sourceInUse(let path):
            "\(path) is open in another process (a running hub?): stop the hub before migrating its store"
        case .sourceSchema(let found, let expected):
            "the SQLite store is at schema version \(found), this hub copies version \(expected): "
                + (found < expected ? "start this hub on it once to bring it up to date" : "use the hub that wrote it")
        case .sourceTables(let differences):
            "the SQLite store's tables differ from what this hub copies (\(differences.joined(separator: "; "))): "
                + "nothing was copied; use the hub that wrote it"
        case .targetNotEmpty(let table): "the target already holds data (table \(table)): migrate only into an empty database or schema"
        case .copyFailed(let table, let reason): "copying \(table) failed: \(reason)"
        case .mismatch(let table): "table \(table) differs after copying; nothing was committed"
        }
    }
}

public enum StoreMigration {
    static let batchRows = 1_000

    /// Copies the SQLite store at `sqlitePath` into the PostgreSQL database (or schema, by its
    /// search_path) at `postgresURL`; returns the verify's reports (all matching).
    public static func migrate(sqlitePath: String, postgresURL: String, now: Int64,
                               progress: (String) -> Void) throws -> [MigrationTableReport] {
        let source = try openSource(sqlitePath)
        defer { try? source.execute("ROLLBACK") }
        let target = try PGConnection(url: postgresURL, statementTimeout: 600)
        defer { target.close() }
        try PGSchema.migrate(target, now: now)
        try target.execute("BEGIN")
        do {
            let names = MigrationTable.all.map(\.name).joined(separator: ", ")
            // No hub on the target writes meanwhile (one that tries waits for the COMMIT).
            try target.execute("LOCK TABLE \(names) IN EXCLUSIVE MODE")
            for table in MigrationTable.all where table.name != "store_meta" {
                if try target.query("SELECT EXISTS (SELECT 1 FROM \(table.name))").bool(0, 0) {
                    throw StoreMigrationError.targetNotEmpty(table: table.name)
                }
            }
            // PGSchema made an epoch of its own: the source's replaces it.
            try target.execute("DELETE FROM store_meta")
            var sourceSums: [String: RowChecksum] = [:]
            for table in MigrationTable.all {
                let checksum = RowChecksum()
                sourceSums[table.name] = checksum
                let copied = try copy(table, from: source, to: target, checksum: checksum, progress: progress)
                if let identity = table.identity {
                    _ = try target.query("""
                        SELECT setval(pg_get_serial_sequence('\(table.name)', '\(identity)'),
                                      COALESCE(MAX(\(identity)), 0) + 1, false) FROM \(table.name)
                        """)
                }
                progress("\(table.name): \(copied) rows copied")
            }
            try PostgresStore.indexStoredMessages(target) // the search index is derived, not copied
            let reports = try verify(source: source, target: target, sourceSums: sourceSums, progress: progress)
            if let differing = reports.first(where: { !$0.matches }) {
                throw StoreMigrationError.mismatch(table: differing.table)
            }
            try checkTotals(target)
            try target.execute("COMMIT")
            return reports
        } catch {
            _ = try? target.execute("ROLLBACK")
            throw error
        }
    }

    /// Compares the stores again (after a migration, before the hub writes to PostgreSQL).
    public static func verify(sqlitePath: String, postgresURL: String,
                              progress: (String) -> Void) throws -> [MigrationTableReport] {
        let source = try openSource(sqlitePath)
        defer { try? source.execute("ROLLBACK") }
        let target = try PGConnection(url: postgresURL, statementTimeout: 600)
        defer { target.close() }
        try target.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        defer { _ = try? target.execute("ROLLBACK") }
        return try verify(source: source, target: target, progress: progress)
    }

    /// The reports as a table for the terminal.
    public static func summary(_ reports: [MigrationTableReport]) -> String {
        let width = max(5, reports.map(\.table.count).max() ?? 0)
        func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
            let fill = String(repeating: " ", count: max(0, n - s.count))
            return right ? fill + s : s + fill
        }
        var lines = ["\(pad("table", width))  \(pad("sqlite", 10, right: true))  \(pad("postgres", 10, right: true))  sha-256 (first 16)  result"]
        for r in reports {
            let digest = r.sourceChecksum == r.targetChecksum
                ? String(r.sourceChecksum.prefix(16)) + "  " : "differs           "
            lines.append("\(pad(r.table, width))  \(pad("\(r.sourceRows)", 10, right: true))  \(pad("\(r.targetRows)", 10, right: true))  \(digest)  \(r.matches ? "ok" : "DIFFERS")")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: source

    /// The SQLite store, read-only, inside a read transaction (its snapshot starts at the
    /// first read, the schema check).
    static func openSource(_ path: String) throws -> SQLiteConnection {
        guard access(path, F_OK) == 0 else { throw StoreMigrationError.sourceMissing(path) }
        if heldOpenElsewhere(path) { throw StoreMigrationError.sourceInUse(path) }
        let db = try SQLiteConnection(path: path, readOnly: true)
        try db.execute("BEGIN")
        let version = Int(try db.scalarText("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").flatMap { Int($0) } ?? 0)
        db.resetStatements()
        let expected = Migrations.all.last?.0 ?? 0
        guard version == expected else { throw StoreMigrationError.sourceSchema(found: version, expected: expected) }
        let differences = MigrationTable.sourceDifferences(try sourceTables(db))
        guard differences.isEmpty else { throw StoreMigrationError.sourceTables(differences) }
        return db
    }

    /// Every table of the SQLite store with its columns (sqlite_master, PRAGMA table_info).
    static func sourceTables(_ db: SQLiteConnection) throws -> [String: [String]] {
        defer { db.resetStatements() }
        let tables = try db.statement("SELECT name FROM sqlite_master WHERE type = 'table'")
        var names: [String] = []
        while try tables.step() { names.append(tables.text(0)) }
        var out: [String: [String]] = [:]
        let columns = try db.statement("SELECT name FROM pragma_table_info(?1)")
        for name in names {
            columns.reset()
            try columns.bind(.text(name))
            var list: [String] = []
            while try columns.step() { list.append(columns.text(0)) }
            out[name] = list
        }
        return out
    }

    /// True when another process has the database open: every SQLite connection to a WAL
    /// database holds a shared lock on one byte of its `-shm` file (the "DMS" byte, offset
    /// 128) for as long as it is open. POSIX locks do not conflict within a process, so a
    /// connection of this process is not seen.
    static func heldOpenElsewhere(_ path: String) -> Bool {
        let fd = open(path + "-shm", O_RDONLY)
        guard fd >= 0 else { return false } // no shared memory: no connection has the WAL open
        defer { close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 128
        lock.l_len = 1
        guard fcntl(fd, F_GETLK, &lock) == 0 else { return false }
        return lock.l_type != Int16(F_UNLCK)
    }

    /// Streams `table`'s source rows, in order, into `body`.
    static func sourceRows(_ table: MigrationTable, _ db: SQLiteConnection, _ body: ([String?]) throws -> Void) throws {
        let s = try db.statement(table.sourceSelect)
        defer { db.resetStatements() }
        while try s.step() {
            var row: [String?] = []
            row.reserveCapacity(table.columns.count)
            for (i, column) in table.columns.enumerated() {
                let c = Int32(i)
                if s.isNull(c) { row.append(nil); continue }
                switch column.kind {
                case .int: row.append(String(s.int(c)))
                case .bool: row.append(s.int(c) != 0 ? "true" : "false")
                case .text: row.append(s.text(c))
                }
            }
            try body(row)
        }
    }

    // MARK: copy

    /// Copies the table; `checksum` sums the source rows as they pass (the verify's source side).
    private static func copy(_ table: MigrationTable, from source: SQLiteConnection, to target: PGConnection,
                             checksum: RowChecksum, progress: (String) -> Void) throws -> Int {
        let batch = InsertBatch(table, target, rows: batchRows)
        try sourceRows(table, source) { row in
            checksum.add(row, table.columns)
            if try batch.add(table.storable(row)), batch.copied % (batchRows * 50) == 0 {
                progress("\(table.name): \(batch.copied) rows…")
            }
        }
        try batch.flush()
        return batch.copied
    }

    // MARK: verify

    /// `sourceSums`: the source side already summed (while copying), by table; the others are
    /// read here.
    static func verify(source: SQLiteConnection, target: PGConnection, sourceSums: [String: RowChecksum] = [:],
                       progress: (String) -> Void) throws -> [MigrationTableReport] {
        var reports: [MigrationTableReport] = []
        for table in MigrationTable.all {
            let sourceSum: RowChecksum
            if let summed = sourceSums[table.name] {
                sourceSum = summed
            } else {
                sourceSum = RowChecksum()
                try sourceRows(table, source) { sourceSum.add($0, table.columns) }
            }
            let targetSum = RowChecksum()
            try targetRows(table, target) { targetSum.add($0, table.columns) }
            let report = MigrationTableReport(table: table.name, sourceRows: sourceSum.rows, targetRows: targetSum.rows,
                                              sourceChecksum: sourceSum.finish(), targetChecksum: targetSum.finish())
            progress("\(table.name): verified \(report.sourceRows) / \(report.targetRows) rows, \(report.matches ? "equal" : "DIFFERENT")")
            reports.append(report)
        }
        return reports
    }

    /// Streams `table`'s target rows, decoded to the source's values, in the source's order,
    /// through a cursor (a page of `batchRows` at a time). Needs an open transaction.
    static func targetRows(_ table: MigrationTable, _ db: PGConnection, _ body: ([String?]) throws -> Void) throws {
        try db.execute("DECLARE migration_rows NO SCROLL CURSOR FOR \(table.targetSelect)")
        let width = table.targetColumns.count
        while true {
            let page = try db.query("FETCH \(batchRows) FROM migration_rows")
            if page.count == 0 { break }
            for r in 0..<page.count {
                var stored: [String?] = []
                stored.reserveCapacity(width)
                for c in 0..<width {
                    if page.isNull(r, c) { stored.append(nil); continue }
                    // Integers rendered as the source renders them (one canonical decimal).
                    switch c < table.columns.count ? table.columns[c].kind : .text {
                    case .int: stored.append(String(page.int(r, c)))
                    case .bool: stored.append(page.bool(r, c) ? "true" : "false")
                    case .text: stored.append(page.text(r, c))
                    }
                }
                try body(table.original(stored))
            }
        }
        try db.execute("CLOSE migration_rows")
    }

    /// PostgreSQL's striped totals (kept by its triggers as rows went in) add up to the rows.
    private static func checkTotals(_ db: PGConnection) throws {
        let r = try db.query("""
            SELECT (SELECT COALESCE(SUM(messages), 0) FROM totals) = (SELECT COUNT(*) FROM messages)
               AND (SELECT COALESCE(SUM(notifications), 0) FROM totals) = (SELECT COUNT(*) FROM notifications)
            """)
        guard r.bool(0, 0) else { throw StoreMigrationError.mismatch(table: "totals") }
    }
}

/// Rows on their way into one table: sent as one multi-row INSERT per `rows` rows.
private final class InsertBatch {
    private let table: MigrationTable
    private let target: PGConnection
    private let rows: Int
    private let width: Int
    private let casts: [String]
    private var params: [String?] = []
    private var pending = 0
    private(set) var copied = 0

    init(_ table: MigrationTable, _ target: PGConnection, rows: Int) {
        self.table = table
        self.target = target
        self.rows = rows
        width = table.targetColumns.count
        casts = table.columns.map { $0.kind == .int ? "::bigint" : $0.kind == .bool ? "::boolean" : "" }
            + (table.escaped.isEmpty ? [] : ["::boolean"])
        params.reserveCapacity(rows * width)
    }

    /// Adds a row (as PostgreSQL stores it); true when that sent a batch.
    func add(_ row: [String?]) throws -> Bool {
        params += row
        pending += 1
        guard pending == rows else { return false }
        try flush()
        return true
    }

    func flush() throws {
        guard pending > 0 else { return }
        do {
            _ = try target.query(insertSQL(rows: pending), params)
        } catch where !error.isConnectionLost {
            throw StoreMigrationError.copyFailed(table: table.name, reason: error.description)
        }
        copied += pending
        params.removeAll(keepingCapacity: true)
        pending = 0
    }

    private var cachedSQL: (rows: Int, sql: String)?

    private func insertSQL(rows count: Int) -> String {
        if let cachedSQL, cachedSQL.rows == count { return cachedSQL.sql }
        var sql = "INSERT INTO \(table.name) (\(table.targetColumns.joined(separator: ", "))) VALUES "
        for r in 0..<count {
            sql += r == 0 ? "(" : ", ("
            for c in 0..<width {
                if c > 0 { sql += ", " }
                sql += "$\(r * width + c + 1)\(casts[c])"
            }
            sql += ")"
        }
        cachedSQL = (count, sql)
        return sql
    }
}
