import Glibc

// Structured logs: one line per event, `ts=… level=… event=… key=value …`, to standard error.
// Values are quoted when they hold spaces or quotes. Never log a token or message text.
enum LogLevel: Int, Comparable, Sendable {
    case debug = 0, info = 1, error = 2
    static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

enum Log {
    // Set once at start-up, before any loop thread exists.
    nonisolated(unsafe) static var level = LogLevel.info

    static func debug(_ event: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.debug, event, fields) }
    static func info(_ event: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.info, event, fields) }
    static func error(_ event: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.error, event, fields) }

    private static func write(_ l: LogLevel, _ event: String, _ fields: KeyValuePairs<String, String>) {
        guard l >= level else { return }
        var line = "ts=\(wallMillis()) level=\(l == .debug ? "debug" : l == .info ? "info" : "error") event=\(event)"
        for (k, v) in fields { line += " \(k)=\(quote(v))" }
        line += "\n"
        // One write(2) per line keeps lines from different loops whole.
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }

    private static func quote(_ v: String) -> String {
        if !v.isEmpty && !v.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" }) { return v }
        var out = "\""
        for ch in v {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out + "\""
    }
}
