import Foundation
import Glibc
import XCTest

// A redis-server of one test's own (Debian's binary, as .ci/run installs it), on a free port, for
// faults that would disturb the shared instances: shut down without saving and started again on
// the same port, as an operator's restart or a crash would.
final class PrivateRedis {
    let port: Int
    private var process: Process?

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") else {
            throw XCTSkip("NEEDS-ENGINE: redis-server is not installed (.ci/run installs Debian's redis-server)")
        }
        port = try Self.freePort()
        try start()
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts the server (again) on `port` and waits until it answers.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        p.arguments = ["--bind", "127.0.0.1", "--port", "\(port)", "--save", "", "--appendonly", "no", "--protected-mode", "yes"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if Self.answers(port) { return }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw TestError("redis-server on \(port) did not start")
    }

    /// SHUTDOWN NOSAVE: every key and subscription is gone.
    func crash() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    func stop() { crash() }

    private static func answers(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return false }
        let ping = Array("PING\r\n".utf8)
        guard write(fd, ping, ping.count) == ping.count else { return false }
        var reply = [UInt8](repeating: 0, count: 16)
        return read(fd, &reply, reply.count) > 0 && reply.starts(with: Array("+PONG".utf8))
    }

    /// A port nothing listens on now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw TestError("no free port") }
        return Int(UInt16(bigEndian: a.sin_port))
    }
}
