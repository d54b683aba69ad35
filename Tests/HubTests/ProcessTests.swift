import Foundation
import Glibc
import Protocol
import XCTest

// The montrose-hub executable as users run it: start-up lines, start-up errors, SIGTERM,
// development secrets, and memory under a compression bomb.
final class ProcessTests: XCTestCase {
    private func dataDir() -> String { TestDirectory.make("hub-proc") }

    private func startHub(_ extra: [String] = [], data: String? = nil, drainStderr: Bool = true) throws -> (HubProcess, port: Int, bridge: Int) {
        let hub = try HubProcess(["--host", "127.0.0.1", "--port", "0", "--bridge-port", "0",
                                  "--data", data ?? dataDir(), "--loops", "2"] + extra, drainStderr: drainStderr)
        guard let pub = hub.waitForLine(containing: "public listening"), let port = HubProcess.port(in: pub),
              let br = hub.waitForLine(containing: "bridge listening"), let bridge = HubProcess.port(in: br) else {
            throw TestError("hub did not start: \(hub.outputLines) \(hub.standardError)")
        }
        return (hub, port, bridge)
    }

    /// Logging never stalls a loop: with standard error unread (a full pipe), 3,000 logged
    /// bridge auth failures (about 400 KB of lines; the pipe holds 64 KiB) are all answered
    /// and chat keeps working; the lines wait in the hub (up to 1 MiB) and all arrive once
    /// standard error is read again.
    func testAHubWhoseStandardErrorNobodyReadsKeepsServing() throws {
        let data = dataDir()
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (hub, port, bridge) = try startHub(["--jwt-secret", TestHub.secret, "--bridge-key", TestHub.bridgeKey],
                                               data: data, drainStderr: false)
        defer { hub.signal(SIGKILL); _ = hub.waitForExit() }
        let client = BridgeClient(port: bridge)
        for i in 0..<3_000 {
            let r = try client.send("GET", "/v1/stats", key: "wrong-key-\(i)")
            XCTAssertEqual(r.status, 401)
            if r.status != 401 { break }
        }
        let ann = try ChatClient(port: port, token: TestHub.token("ann", .client))
        _ = try ann.result("subscribe", ["channel": "conv:website:ann"])
        let sent = try ann.result("send", ["channel": "conv:website:ann", "text": "still here", "client_msg_id": "e1"])
        XCTAssertEqual(sent["seq"]?.intValue, 1)
        // Now read the pipe: every line arrives, none was lost.
        let fd = hub.stderrPipe.fileHandleForReading.fileDescriptor
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var failures = 0
        let deadline = Date().addingTimeInterval(10)
        while failures < 3_000 && Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 100) > 0 else { continue }
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            bytes += chunk[0..<n]
            failures = String(decoding: bytes, as: UTF8.self).components(separatedBy: "event=bridge_auth_failed").count - 1
        }
        XCTAssertEqual(failures, 3_000, "every logged line arrives once standard error is read")
        // key=value: a value with a space is quoted, a plain one is not.
        let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first { $0.contains("event=bridge_auth_failed") }
        XCTAssertTrue(line?.hasSuffix(#" path=/v1/stats reason="wrong key""#) == true, String(line ?? "no line"))
    }

    func testStartsOnDefaultsWithGeneratedSecretsAndReusesThem() throws {
        let data = dataDir()
        let (first, _, _) = try startHub(data: data)
        XCTAssertTrue(first.outputLines.contains { $0.contains("development secrets generated") }, "\(first.outputLines)")
        let secretLine = first.outputLines.first { $0.contains("jwt secret:") }
        XCTAssertNotNil(secretLine, "the generated JWT secret is printed")
        first.signal(SIGTERM)
        XCTAssertEqual(first.waitForExit(), 0)
        let (second, _, _) = try startHub(data: data)
        XCTAssertTrue(second.outputLines.contains { $0.contains("using development secrets") },
                      "a second run reuses the stored secrets: \(second.outputLines)")
        second.signal(SIGTERM)
        XCTAssertEqual(second.waitForExit(), 0)
    }

    func testBadFlagExitsNonZeroWithOneLineReason() throws {
        let hub = try HubProcess(["--port", "eighty"])
        XCTAssertEqual(hub.waitForExit(), 2)
        let err = hub.standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(err.split(separator: "\n").count, 1, "one line: \(err)")
        XCTAssertTrue(err.contains("--port"), err)
        let unknown = try HubProcess(["--frobnicate"])
        XCTAssertEqual(unknown.waitForExit(), 2)
        XCTAssertTrue(unknown.standardError.contains("unknown flag --frobnicate"))
    }

    func testPortInUseExitsNonZeroWithReason() throws {
        let (running, port, _) = try startHub()
        defer { running.signal(SIGKILL) }
        let second = try HubProcess(["--host", "127.0.0.1", "--port", "\(port)", "--bridge-port", "0", "--data", dataDir()])
        XCTAssertEqual(second.waitForExit(), 2, "a second hub on the same port must not share it")
        XCTAssertTrue(second.standardError.contains("Address already in use"), second.standardError)
    }

    func testUnreadableCertificateExitsNonZero() throws {
        let hub = try HubProcess(["--port", "0", "--bridge-port", "0", "--data", dataDir(),
                                  "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"])
        XCTAssertEqual(hub.waitForExit(), 2)
        XCTAssertTrue(hub.standardError.contains("cannot read TLS certificate"), hub.standardError)
    }

    func testSIGTERMClosesWebSocketsWith1001AndExitsZero() throws {
        let (hub, port, _) = try startHub(["--echo-path", "/echo"])
        let clients = try (0..<20).map { _ in try WSClient(port: port) }
        for c in clients { try c.send("hi"); XCTAssertEqual(try c.readText(), "hi") }
        hub.signal(SIGTERM)
        for c in clients {
            let close = try c.readClose()
            XCTAssertEqual(close.closeCode, 1001, "every client is told the server is going away")
            try c.close(code: 1001)
        }
        XCTAssertEqual(hub.waitForExit(), 0, "SIGTERM is a clean exit")
    }

    func testCompressionBombGets1009AndMemoryStaysFlat() throws {
        let (hub, port, _) = try startHub(["--echo-path", "/echo"])
        defer { hub.signal(SIGKILL) }
        var p = DeflateParameters()
        p.serverNoContextTakeover = true
        let bomb = Deflater(parameters: p)!.deflate([UInt8](repeating: 0, count: 10 << 20))
        XCTAssertLessThan(bomb.count, 64 * 1024, "the bomb is small on the wire")

        let warm = try WSClient(port: port, extensions: "permessage-deflate")
        try warm.send("warm up", compress: true)
        _ = try warm.readText()
        let before = Self.rss(pid: hub.process.processIdentifier)
        for _ in 0..<5 {
            let c = try WSClient(port: port, extensions: "permessage-deflate")
            try c.sendFrame(.binary, bomb, rsv1: true)
            XCTAssertEqual(try c.readClose().closeCode, 1009, "a message inflating past 1 MiB gets 1009")
        }
        let after = Self.rss(pid: hub.process.processIdentifier)
        let growth = after - before
        XCTAssertLessThan(growth, 8 << 20, "RSS grew \(growth) bytes (before \(before), after \(after)): the bomb was not expanded")
        try warm.send("still served", compress: true)
        XCTAssertEqual(try warm.readText(), "still served")
    }

    static func rss(pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }
}
