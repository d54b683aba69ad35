import Foundation
import Glibc

// A blocking HTTP/1.1 client for the hub's bridge (seeding users, posting triggers, polling).
// Keep-alive, with pipelining for bulk requests: `pipeline` writes a batch and reads as many
// answers back. `write` plus `answerIfReady` let a caller keep its event loop running while
// an answer is on its way. Loopback only, like the rest of the generator.
final class BridgeHTTP {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let key: String

    init(host: String, port: Int, key: String) throws(UsageError) {
        self.key = key
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw UsageError(message: "cannot connect to the bridge at \(host):\(port): \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func encode(_ method: String, _ path: String, _ body: String?) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer \(key)\r\n"
        let bytes = Array((body ?? "").utf8)
        if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(bytes.count)\r\n" }
        return Array((head + "\r\n").utf8) + bytes
    }

    /// Sends one request and returns (status, body).
    func request(_ method: String, _ path: String, _ body: String? = nil) throws(UsageError) -> (Int, String) {
        try pipeline([encode(method, path, body)])[0]
    }

    /// Writes every request, then reads one answer per request.
    func pipeline(_ requests: [[UInt8]]) throws(UsageError) -> [(Int, String)] {
        try write(requests.flatMap { $0 })
        var answers: [(Int, String)] = []
        while answers.count < requests.count { answers.append(try readAnswer()) }
        return answers
    }

    /// Writes encoded request bytes (blocking until the kernel took them all).
    func write(_ bytes: [UInt8]) throws(UsageError) {
        var out = bytes[...]
        while !out.isEmpty {
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw UsageError(message: "bridge write failed: \(String(cString: strerror(errno)))") }
            out = out.dropFirst(n)
        }
    }

    /// The next answer if it has arrived completely; never waits.
    func answerIfReady() throws(UsageError) -> (Int, String)? {
        while true {
            if let answer = bufferedAnswer() { return answer }
            guard try receive(flags: Int32(MSG_DONTWAIT)) else { return nil }
        }
    }

    private func readAnswer() throws(UsageError) -> (Int, String) {
        while true {
            if let answer = bufferedAnswer() { return answer }
            _ = try receive(flags: 0)
        }
    }

    /// Reads what the socket has; false when nothing was there (non-blocking reads only).
    private func receive(flags: Int32) throws(UsageError) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, flags) }
        if n < 0 && flags != 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return false }
        guard n > 0 else { throw UsageError(message: "bridge closed the connection or timed out") }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// One complete answer (status, body) taken from the front of the buffer.
    private func bufferedAnswer() -> (Int, String)? {
        guard let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        let lines = head.split(separator: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        var length = 0
        for l in lines.dropFirst() where l.lowercased().hasPrefix("content-length:") {
            length = Int(l.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        let bodyStart = end.upperBound
        guard buffer.count - bodyStart >= length else { return nil }
        let body = String(decoding: buffer[bodyStart..<(bodyStart + length)], as: UTF8.self)
        buffer.removeFirst(bodyStart + length)
        return (status, body)
    }
}
