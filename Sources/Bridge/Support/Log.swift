import Glibc

// Structured logs: one line per event, `ts=… level=… event=… key=value …`, to standard error.
// Values are quoted when they hold spaces or quotes. Never log a token or message text.
public enum LogLevel: Int, Comparable, Sendable {
    case debug = 0, info = 1, error = 2
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

public enum Log {
    // Set once at start-up, before any loop thread exists.
    nonisolated(unsafe) public static var level = LogLevel.info

    public static func debug(_ event: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.debug, event, fields) }
    public static func info(_ event: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.info, event, fields) }
    public static func error(_ event: String, _ fields: KeyValuePairs<String, String> = [:]) { write(.error, event, fields) }

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

/// Wall-clock milliseconds since the Unix epoch (the contract's `ts`).
public func wallMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
