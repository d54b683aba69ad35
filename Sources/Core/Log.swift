import Foundation
import Glibc

// Structured logs: one line per event, `ts=… level=… event=… key=value …`, to standard error.
// Values are quoted when they hold a space, a quote, `=` or a control character (see `quote`). Never log a token or message text.
// Lines go through a writer thread (LogWriter): a loop never waits on standard error.
// Here, in Core (beside Locked), the module every other one can import, so the database
// threads log the same lines through the same writer as the loops and the bridge.
public enum LogLevel: Int, Comparable, Sendable {
    case debug = 0, info = 1, error = 2
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

public enum Log {
    // Set once at start-up, before any loop thread exists.
    nonisolated(unsafe) public static var level = LogLevel.info

    // The fields are made only when the level is on: a debug line's values (a connection's id,
    // its peer written as text) cost nothing while debug is off, as it is by default.
    public static func debug(_ event: String, _ fields: @autoclosure () -> KeyValuePairs<String, String> = [:]) { write(.debug, event, fields) }
    public static func info(_ event: String, _ fields: @autoclosure () -> KeyValuePairs<String, String> = [:]) { write(.info, event, fields) }
    public static func error(_ event: String, _ fields: @autoclosure () -> KeyValuePairs<String, String> = [:]) { write(.error, event, fields) }

    private static func write(_ l: LogLevel, _ event: String, _ fields: () -> KeyValuePairs<String, String>) {
        guard l >= level else { return }
        var line = "ts=\(wallMillis()) level=\(l == .debug ? "debug" : l == .info ? "info" : "error") event=\(event)"
        for (k, v) in fields() { line += " \(k)=\(quote(v))" }
        line += "\n"
        LogWriter.shared.append(line)
    }

    /// Waits (at most `timeoutMs`) until every line logged so far is written; before exit.
    public static func flush(timeoutMs: Int = 2_000) { LogWriter.shared.flush(timeoutMs: timeoutMs) }

    /// A value as it goes in a line: as it is when plain; quoted when it is empty or holds a
    /// space, `"`, `=` or a control character, with `"`, `\` and control characters escaped, so
    /// no value can end its line or forge a field. Works on UTF-8 bytes: walking Characters
    /// cost six times as much (176 ns a value against 29), and takes "\r\n" for one Character
    /// that matches neither "\r" nor "\n", so it went out unescaped.
    static func quote(_ v: String) -> String {
        func special(_ b: UInt8) -> Bool { b == 0x20 || b == 0x22 || b == 0x3D || b < 0x20 || b == 0x7F }
        if !v.isEmpty && !v.utf8.contains(where: special) { return v }
        var out: [UInt8] = [0x22]
        out.reserveCapacity(v.utf8.count + 8)
        for b in v.utf8 {
            switch b {
            case 0x22, 0x5C: out.append(0x5C); out.append(b)    // \" \\
            case 0x0A: out.append(0x5C); out.append(0x6E)       // \n
            case 0x0D: out.append(0x5C); out.append(0x72)       // \r
            case 0x09: out.append(0x5C); out.append(0x74)       // \t
            case ..<0x20, 0x7F:                                 // \u00XX
                out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, hexDigits[Int(b >> 4)], hexDigits[Int(b & 0xF)]])
            default: out.append(b)
            }
        }
        out.append(0x22)
        return String(decoding: out, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}

/// Hands log lines to one thread that writes them to standard error. A reader of stderr that
/// stalls (a full pipe, a stuck terminal) would otherwise stall whichever loop logged: 2,000
/// slow consumers cut at once log 2,000 lines. Up to `maxPending` bytes wait; past it lines
/// are dropped, counted, and the count is logged once the writer catches up.
final class LogWriter: Sendable {
    static let shared = LogWriter()
    static let maxPending = 1 << 20
    private struct State {
        var pending: [UInt8] = []
        var dropped = 0
        var writing = false
    }
    private let state = Locked(State())
    private let wake = DispatchSemaphore(value: 0)

    private init() {
        startThread(named: "log-writer") { [self] in run() }
    }

    func append(_ line: String) {
        let signal = state.withLock { s -> Bool in
            guard s.pending.count + line.utf8.count <= Self.maxPending else {
                s.dropped += 1
                return false
            }
            let wasIdle = s.pending.isEmpty && !s.writing
            s.pending.append(contentsOf: line.utf8)
            return wasIdle
        }
        if signal { wake.signal() }
    }

    func flush(timeoutMs: Int) {
        for _ in 0..<max(1, timeoutMs) {
            if state.withLock({ $0.pending.isEmpty && !$0.writing }) { return }
            usleep(1_000)
        }
    }

    private func run() {
        var out: [UInt8] = []
        while true {
            wake.wait()
            while true {
                let dropped = state.withLock { s -> Int in
                    swap(&out, &s.pending)
                    s.writing = !out.isEmpty || s.dropped > 0
                    defer { s.dropped = 0 }
                    return s.dropped
                }
                if dropped > 0 {
                    out.append(contentsOf: "ts=\(wallMillis()) level=error event=log_dropped lines=\(dropped) reason=\"standard error not taking lines\"\n".utf8)
                }
                if out.isEmpty { break }
                Self.writeAll(out)
                out.removeAll(keepingCapacity: out.capacity <= 64 * 1024)
                state.withLock { $0.writing = false }
            }
        }
    }

    private static func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buf in
            var offset = 0
            while offset < buf.count {
                let n = Glibc.write(2, buf.baseAddress! + offset, buf.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}
