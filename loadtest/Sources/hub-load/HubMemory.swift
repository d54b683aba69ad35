import Glibc

// The hub's resident memory, read from /proc/<pid>/status (the `VmRSS:` line, in kB). The
// hub runs on the same machine as the generator (loopback only), so its pid is all we need.
enum HubMemory {
    /// VmRSS of `pid` in kB; nil when the process or the line cannot be read.
    static func rssKB(pid: Int32) -> Int? {
        guard let text = procFile("/proc/\(pid)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            // "VmRSS:\t   27840 kB"
            return Int(line.dropFirst("VmRSS:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }

    /// A /proc file's text. Read with plain read() calls: /proc files report a size of 0, which
    /// Foundation's file reading takes at its word.
    private static func procFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]); continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
