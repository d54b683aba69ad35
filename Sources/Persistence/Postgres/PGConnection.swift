import CPostgres
import Dispatch
import Glibc

// One libpq connection, used by one thread at a time. Non-blocking: every wait is a poll() on
// the socket with a deadline, so a cut network or a silent server ends in a `PGError` (and a
// closed connection) instead of a thread stuck in libpq. TCP keepalives and tcp_user_timeout
// in the conninfo make the kernel give up on a dead peer too.

/// A PostgreSQL failure: a statement's error (with its SQLSTATE), or the connection lost or
/// silent past its deadline (after which the connection is closed; the owner reconnects).
public struct PGError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The server refused the statement; the connection is fine.
        case statement
        /// The connection failed or broke: any transaction on it is gone, its outcome unknown
        /// if a COMMIT was in flight.
        case connectionLost
        /// No answer within the deadline; the connection was closed.
        case timeout
    }

    public let kind: Kind
    /// The SQLSTATE code (`23505`, `40P01`…), for statement errors.
    public let sqlState: String?
    public let message: String

    public init(kind: Kind, sqlState: String? = nil, message: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
    }

    /// The connection is unusable now (lost, or closed after a deadline).
    public var isConnectionLost: Bool { kind != .statement }
    /// A deadlock or serialization failure: the transaction may simply be run again.
    public var isRetryable: Bool { sqlState == "40P01" || sqlState == "40001" }
    /// Class 23: a unique, foreign-key, not-null or check constraint said no.
    public var isConstraintViolation: Bool { sqlState?.hasPrefix("23") == true }

    public var description: String {
        switch kind {
        case .statement: "PostgreSQL error \(sqlState ?? "?"): \(message)"
        case .connectionLost: "PostgreSQL connection lost: \(message)"
        case .timeout: "PostgreSQL did not answer in time: \(message)"
        }
    }
}

final class PGConnection {
    private var conn: OpaquePointer?
    /// Users whose unread lock (PostgresStore.lockUnread) the open transaction holds; a writer
    /// empties it at every BEGIN.
    var unreadLocked: Set<String> = []
    /// Seconds a statement may take, client side (the server's statement_timeout is a little longer).
    let statementTimeout: Double

    /// Connects (URL or key=value conninfo), within `connectTimeout` seconds.
    init(url: String, connectTimeout: Double = 10, statementTimeout: Double = 30) throws(PGError) {
        self.statementTimeout = statementTimeout
        // Ours first: the URL's own settings, expanded at "dbname", override them.
        let settings: [(String, String)] = [
            ("connect_timeout", "\(max(2, Int(connectTimeout.rounded(.up))))"),
            ("keepalives", "1"), ("keepalives_idle", "5"), ("keepalives_interval", "2"), ("keepalives_count", "3"),
            ("tcp_user_timeout", "10000"), ("application_name", "montrose-hub"),
            ("dbname", url),
        ]
        let keys = settings.map { strdup($0.0) }
        let values = settings.map { strdup($0.1) }
        defer { (keys + values).forEach { free($0) } }
        let keyPointers = keys.map { UnsafePointer($0) } + [nil]
        let valuePointers = values.map { UnsafePointer($0) } + [nil]
        conn = PQconnectStartParams(keyPointers, valuePointers, 1)
        guard let conn, PQstatus(conn) != CONNECTION_BAD else { throw lost("could not start connecting") }
        PQsetNoticeProcessor(conn, { _, _ in }, nil) // NOTICEs ("already exists, skipping") are not ours to print
        let deadline = Self.now() + connectTimeout
        var polling = PGRES_POLLING_WRITING
        while polling != PGRES_POLLING_OK {
            if polling == PGRES_POLLING_FAILED { throw lost("could not connect") }
            let events = polling == PGRES_POLLING_READING ? Int16(POLLIN) : Int16(POLLOUT)
            guard try waitSocket(events, until: deadline) else {
                close()
                throw PGError(kind: .timeout, message: "connecting took over \(connectTimeout) s")
            }
            polling = PQconnectPoll(conn)
        }
        guard PQsetnonblocking(conn, 1) == 0 else { throw lost("could not switch to non-blocking mode") }
        // The server gives up a little after we do, so a statement we abandoned does not hold
        // its locks on, and an open transaction left idle (a writer gone silent) ends.
        let serverMs = Int(statementTimeout * 1000) + 1000
        try execute("SET statement_timeout = \(serverMs); SET idle_in_transaction_session_timeout = \(serverMs * 2)")
    }

    deinit { close() }

    var isConnected: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// The server process serving this connection (for pg_terminate_backend in tests).
    var backendPID: Int32 { conn.map { PQbackendPID($0) } ?? 0 }

    func close() {
        if let conn { PQfinish(conn) }
        conn = nil
    }

    /// Runs one or several statements without parameters.
    func execute(_ sql: String) throws(PGError) {
        guard let conn else { throw PGError(kind: .connectionLost, message: "not connected") }
        guard PQsendQuery(conn, sql) == 1 else { throw lost("could not send") }
        _ = try finish(conn)
    }

    /// Runs one statement with text parameters ($1, $2…; SQL casts them: `$1::bigint`).
    func query(_ sql: String, _ params: [String?] = []) throws(PGError) -> PGRows {
        guard let conn else { throw PGError(kind: .connectionLost, message: "not connected") }
        for case let p? in params where p.utf8.contains(0) {
            throw PGError(kind: .statement, sqlState: "22021", message: "a text parameter holds a NUL character")
        }
        let copies = params.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { $0.map { UnsafePointer($0) } }
        guard PQsendQueryParams(conn, sql, Int32(params.count), nil, pointers, nil, nil, 0) == 1 else {
            throw lost("could not send")
        }
        return try finish(conn)
    }

    /// A PostgreSQL array literal of `values`, for a `$n::text[]` parameter.
    static func textArray(_ values: [String]) -> String {
        var out = "{"
        for (i, v) in values.enumerated() {
            if i > 0 { out += "," }
            out += "\""
            for c in v.unicodeScalars {
                if c == "\"" || c == "\\" { out += "\\" }
                out.unicodeScalars.append(c)
            }
            out += "\""
        }
        return out + "}"
    }

    // MARK: waiting

    /// Sends what libpq buffered, then reads every result of the query: the last one, or the
    /// first error once all have been read (the connection is then ready for the next query).
    private func finish(_ conn: OpaquePointer) throws(PGError) -> PGRows {
        let deadline = Self.now() + statementTimeout
        while true {
            let flushed = PQflush(conn)
            if flushed == 0 { break }
            if flushed < 0 { throw lost("could not send") }
            try waitOrTimeout(Int16(POLLIN | POLLOUT), until: deadline)
            guard PQconsumeInput(conn) == 1 else { throw lost("could not read") }
        }
        var failure: PGError?
        var last: OpaquePointer?
        while true {
            while PQisBusy(conn) == 1 {
                try waitOrTimeout(Int16(POLLIN), until: deadline)
                guard PQconsumeInput(conn) == 1 else {
                    if let last { PQclear(last) }
                    throw lost("could not read")
                }
            }
            guard let result = PQgetResult(conn) else { break }
            let status = PQresultStatus(result)
            if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY, failure == nil {
                if let last { PQclear(last) }
                last = result
                continue
            }
            if failure == nil { failure = statementError(result) }
            PQclear(result)
            if status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH {
                close() // COPY is not spoken here: the connection cannot go on
                throw PGError(kind: .connectionLost, message: "unexpected COPY")
            }
        }
        if PQstatus(conn) == CONNECTION_BAD {
            if let last { PQclear(last) }
            throw lost("connection broken")
        }
        if let failure {
            if let last { PQclear(last) }
            throw failure
        }
        return PGRows(last)
    }

    private func waitOrTimeout(_ events: Int16, until deadline: Double) throws(PGError) {
        guard try waitSocket(events, until: deadline) else {
            close()
            throw PGError(kind: .timeout, message: "no answer within \(statementTimeout) s; connection closed")
        }
    }

    /// Waits until the socket is ready for `events`; false at the deadline.
    private func waitSocket(_ events: Int16, until deadline: Double) throws(PGError) -> Bool {
        guard let conn, PQsocket(conn) >= 0 else { throw PGError(kind: .connectionLost, message: "no socket") }
        while true {
            let left = deadline - Self.now()
            if left <= 0 { return false }
            var pfd = pollfd(fd: PQsocket(conn), events: events, revents: 0)
            let n = poll(&pfd, 1, Int32(min(left * 1000 + 1, 60_000)))
            if n > 0 { return true }
            if n < 0 && errno != EINTR { throw lost("poll failed (errno \(errno))") }
        }
    }

    private func statementError(_ result: OpaquePointer) -> PGError {
        let field = { (code: Character) -> String? in
            PQresultErrorField(result, Int32(code.asciiValue ?? 0)).map { String(cString: $0) }
        }
        let message = field("M") ?? PQresultErrorMessage(result).map { String(cString: $0) } ?? "unknown error"
        return PGError(kind: .statement, sqlState: field("C"), message: message)
    }

    /// The connection's own message, and the connection closed.
    private func lost(_ what: String) -> PGError {
        let detail = conn.flatMap { PQerrorMessage($0) }.map { String(cString: $0) } ?? ""
        close()
        let trimmed = detail.split(whereSeparator: \.isNewline).joined(separator: " ")
        return PGError(kind: .connectionLost, message: trimmed.isEmpty ? what : "\(what): \(trimmed)")
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// The rows of one result, read by (row, column) in text format.
final class PGRows {
    private let result: OpaquePointer?
    let count: Int

    init(_ result: OpaquePointer?) {
        self.result = result
        count = result.map { Int(PQntuples($0)) } ?? 0
    }

    deinit { if let result { PQclear(result) } }

    /// "" for NULL.
    func text(_ row: Int, _ col: Int) -> String {
        guard let result, let p = PQgetvalue(result, Int32(row), Int32(col)) else { return "" }
        return String(cString: p)
    }

    func optionalText(_ row: Int, _ col: Int) -> String? { isNull(row, col) ? nil : text(row, col) }

    /// 0 for NULL.
    func int(_ row: Int, _ col: Int) -> Int64 {
        guard let result, let p = PQgetvalue(result, Int32(row), Int32(col)) else { return 0 }
        return Int64(strtoll(p, nil, 10))
    }

    func optionalInt(_ row: Int, _ col: Int) -> Int64? { isNull(row, col) ? nil : int(row, col) }

    func bool(_ row: Int, _ col: Int) -> Bool {
        guard let result, let p = PQgetvalue(result, Int32(row), Int32(col)) else { return false }
        return p.pointee == CChar(UInt8(ascii: "t"))
    }

    func isNull(_ row: Int, _ col: Int) -> Bool {
        guard let result else { return true }
        return PQgetisnull(result, Int32(row), Int32(col)) == 1
    }
}
