import CLinux
import Foundation
import Glibc
import Protocol
import Synchronization
import XCTest
@testable import Hub

// Slow consumers against a hub process: 2,000 connections that stop reading while a publisher
// keeps sending durable messages into their channel. Every one of them is closed with 4009,
// the hub's memory stays bounded, and 100 well-behaved subscribers on the same channel get
// every message, once and in order, with p99 latency close to the run without the slow readers.
final class SlowConsumerTests: XCTestCase {
    static let channel = "conv:website:pub"
    static let secret = TestHub.secret
    private var bridgePort = 0
    /// Messages a second the publisher sends (see `publish`): 1,000 against a release build of
    /// the hub (what the p99 goal is measured on; `.ci/run` runs this test so three times), 250
    /// against the debug build `swift test` runs by default. The debug hub is several times
    /// slower: at 1,000 a second to 2,100 subscribers its loops cannot keep up until the stuck
    /// readers are cut (turns of 0.1–1.5 s, each delivering hundreds of messages before it
    /// writes), and the (debug-built) good readers fell 0.5–5 s behind: a measure of nothing.
    /// At 500 a second the good readers were still up to 1.2 s behind in the first 100 messages
    /// (p99), about 750 pushes queued for each, hub and kernel together: a reader thread that
    /// then lost its core for 250 ms was rightly judged stuck (a clean-clone CI run: 11 of the
    /// 100 cut with 4009 at messages 770–1,147). (Some good readers used to be cut off as stuck
    /// in those runs because the loop's lateness was taken for theirs; see `StuckVerdictTests`.)
    static var isDebugHub: Bool { HubProcess.executable.path.contains("/debug/") }
    static var publishRate: Double { isDebugHub ? 250 : 1_000 }
    /// Messages per run: 10 s at the publish rate. The stuck readers are cut a few hundred in.
    static var messageCount: Int { isDebugHub ? 2_500 : 5_000 }

    private func startHub(_ data: String) throws -> (HubProcess, Int) {
        let hub = try HubProcess(["--host", "127.0.0.1", "--port", "0", "--bridge-port", "0", "--data", data,
                                  "--jwt-secret", Self.secret, "--bridge-key", "slow-test-bridge-key-0123456789",
                                  "--loops", "2", "--ops-rate", "0"])
        guard let line = hub.waitForLine(containing: "public listening", timeout: 10), let port = HubProcess.port(in: line),
              let bridgeLine = hub.waitForLine(containing: "bridge listening", timeout: 10), let bridge = HubProcess.port(in: bridgeLine) else {
            throw TestError("hub did not start: \(hub.outputLines)")
        }
        bridgePort = bridge
        return (hub, port)
    }

    private static func rssKiB(_ pid: Int32) -> Int {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return 0
    }

    /// One value of the hub's /metrics (nil when the line is missing).
    private func metric(_ name: String, _ bridge: BridgeClient) throws -> Int? {
        let text = try bridge.send("GET", "/metrics", key: nil).text
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + " ") }) else { return nil }
        return Int(line.dropFirst(name.count + 1))
    }

    /// Sockets bound to `port` in FIN-WAIT-1 (state 04 in /proc/net/tcp): closed by the hub
    /// with data or a FIN the peer has not taken.
    private static func socketsInFinWait1(port: Int) -> Int {
        guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return -1 }
        let local = String(format: ":%04X", port)
        return table.split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1].hasSuffix(local) && fields[3] == "04"
        }.count
    }

    /// One good subscriber's reader: records each push's seq and its latency from the send time
    /// at the start of its text. It reads frames straight off the socket into one buffer and
    /// finds the two fields with memmem. The readers share two epoll threads (see `readAll`):
    /// with a thread per reader, 100 threads woken by every push outnumbered the hub's two loop
    /// threads on this 2-core machine, and the loops spent more time waiting for a core than
    /// running (schedstat), so the test measured the scheduler rather than the hub.
    private final class Reader: @unchecked Sendable {
        let client: ChatClient
        var latenciesMs: [Double] = []
        var seqs: [Int64] = []
        /// Set when the stream ended or broke before every message came.
        var ended = false
        private let capacity = 1 << 18
        private let buffer: UnsafeMutableRawPointer
        private var start = 0, end = 0

        init(_ c: ChatClient) {
            client = c
            latenciesMs.reserveCapacity(8_192)
            seqs.reserveCapacity(8_192)
            buffer = .allocate(byteCount: capacity, alignment: 8)
            let leftover = c.ws.socket.pending
            c.ws.socket.pending = []
            leftover.withUnsafeBytes { if let b = $0.baseAddress { buffer.copyMemory(from: b, byteCount: $0.count) } }
            end = leftover.count
        }

        deinit { buffer.deallocate() }

        var fd: Int32 { client.ws.socket.fd }

        private static let messagePrefix = Array(#"{"type":"message""#.utf8)
        private static let seqField = Array(#""seq":"#.utf8)
        private static let textField = Array(#""text":""#.utf8)

        /// Where `pattern` first starts in `length` bytes at `p` (memchr for its first byte, then memcmp).
        private static func find(_ pattern: [UInt8], in p: UnsafeMutableRawPointer, _ length: Int) -> UnsafeMutableRawPointer? {
            pattern.withUnsafeBytes { pat -> UnsafeMutableRawPointer? in
                var at = p
                let end = p + length
                while end - at >= pat.count, let hit = memchr(at, Int32(pat[0]), end - at) {
                    if end - hit >= pat.count && memcmp(hit, pat.baseAddress!, pat.count) == 0 { return hit }
                    at = hit + 1
                }
                return nil
            }
        }

        /// Records one text frame's seq and latency when it is a `message` push.
        private func take(_ payload: UnsafeMutableRawPointer, _ length: Int, receivedAt now: Double) {
            guard let start = Self.find(Self.messagePrefix, in: payload, length), start == payload,
                  let seqAt = Self.find(Self.seqField, in: payload, length),
                  let textAt = Self.find(Self.textField, in: payload, length) else { return }
            seqs.append(Int64(strtoll(seqAt.assumingMemoryBound(to: CChar.self) + Self.seqField.count, nil, 10)))
            let sentAt = strtod(textAt.assumingMemoryBound(to: CChar.self) + Self.textField.count, nil)
            latenciesMs.append((now - sentAt) * 1000)
        }

        private func byte(_ i: Int) -> Int { Int(buffer.load(fromByteOffset: i, as: UInt8.self)) }

        /// Takes every whole frame buffered. Pushes here are small: a 64-bit length, or a close
        /// frame, ends the reader.
        private func parse(receivedAt now: Double) {
            while end - start >= 2 {
                var length = byte(start + 1) & 0x7F, head = 2
                if length == 127 { ended = true; return }
                if length == 126 {
                    guard end - start >= 4 else { break }
                    length = byte(start + 2) << 8 | byte(start + 3)
                    head = 4
                }
                guard end - start >= head + length else { break }
                let opcode = byte(start) & 0x0F
                if opcode == 8 { ended = true; return }
                if opcode == 1 { take(buffer + start + head, length, receivedAt: now) }
                start += head + length
            }
            memmove(buffer, buffer + start, end - start)
            end -= start
            start = 0
        }

        /// Reads what the socket has (called when epoll says it is readable); false once done.
        func readAvailable(until expected: Int) -> Bool {
            guard !ended, seqs.count < expected, end < capacity else { return false }
            let n = recv(fd, buffer + end, capacity - end, Int32(MSG_DONTWAIT))
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return true }
            guard n > 0 else { ended = true; return false }
            end += n
            parse(receivedAt: Date().timeIntervalSince1970)
            return !ended && seqs.count < expected
        }
    }

    /// Runs `readers` on one thread: epoll over their sockets until each has `expected`
    /// messages, ended, or `deadline` passes.
    private static func readAll(_ readers: [Reader], until expected: Int, deadline: Date) {
        let epfd = epoll_create1(0)
        defer { close(epfd) }
        for (i, r) in readers.enumerated() {
            var ev = epoll_event()
            ev.events = EPOLLIN.rawValue
            ev.data.u64 = UInt64(i)
            epoll_ctl(epfd, EPOLL_CTL_ADD, r.fd, &ev)
        }
        var active = readers.count
        var events = [epoll_event](repeating: epoll_event(), count: readers.count)
        while active > 0 && Date() < deadline {
            let n = epoll_wait(epfd, &events, Int32(events.count), 100)
            for e in events.prefix(Int(max(0, n))) {
                let r = readers[Int(e.data.u64)]
                if !r.readAvailable(until: expected) {
                    epoll_ctl(epfd, EPOLL_CTL_DEL, r.fd, nil)
                    active -= 1
                }
            }
        }
    }

    /// Publishes `count` messages of ~120 bytes at `rate` a second (each is sent when due, or
    /// as soon as one of the 8 allowed in flight is acknowledged); returns the last seq.
    /// A fixed rate, as latency benchmarks do: sending as fast as acks come back saturates both
    /// cores (hub, test readers and publisher together) before any slow reader exists, and the
    /// p99 then measures the queue of a saturated machine rather than the hub.
    private func publish(port: Int, count: Int, rate: Double, tag: String) throws -> Int64 {
        let pub = try ChatClient(port: port, token: TestHub.token("pub", .client))
        let pad = String(repeating: "x", count: 100)
        var inFlight = 0, sent = 0, acked = 0
        var lastSeq: Int64 = 0
        var nextID: Int64 = 1_000
        let start = Date().timeIntervalSince1970
        /// Seconds until message `n` is due (≤ 0: due now).
        func dueIn(_ n: Int) -> Double { start + Double(n) / rate - Date().timeIntervalSince1970 }
        while acked < count {
            while inFlight < 8 && sent < count && dueIn(sent) <= 0 {
                let text = String(format: "%.6f", Date().timeIntervalSince1970) + " " + pad
                try pub.ws.send(JSON.object(["id": .int(nextID), "op": "send", "channel": .string(Self.channel), "text": .string(text),
                                             "client_msg_id": .string("\(tag)-\(sent)")]).text)
                nextID += 1; sent += 1; inFlight += 1
            }
            // Sends stay on schedule: an ack is waited for only until the next send is due.
            let wait = sent < count && inFlight < 8 ? dueIn(sent) : .infinity
            if inFlight == 0 { // nothing to acknowledge: the next send is due later
                usleep(UInt32(min(max(0, wait), 1) * 1_000_000))
                continue
            }
            if wait.isFinite && pub.ws.socket.pending.isEmpty {
                var p = pollfd(fd: pub.ws.socket.fd, events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, Int32(max(0, wait * 1000).rounded(.up))) == 0 { continue }
            }
            let v = try pub.next()
            guard v["id"] != nil else { continue }
            XCTAssertEqual(v["ok"]?.boolValue, true, v.text)
            lastSeq = max(lastSeq, v["result"]?["seq"]?.intValue ?? 0)
            inFlight -= 1; acked += 1
        }
        return lastSeq
    }

    /// When good readers fell short: the hub's slow_consumer lines for their connections (what
    /// was queued and held for each, and how long its socket had refused), so a failing run
    /// says whether the reader stalled or the hub misjudged it.
    private func printVerdicts(_ hub: HubProcess, on short: [Reader]) {
        guard !short.isEmpty else { return }
        let log = hub.standardErrorSoFar.split(separator: "\n")
        for r in short {
            var address = sockaddr_in(), length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(r.fd, $0, &length) } }
            let peer = "peer=127.0.0.1:\(UInt16(bigEndian: address.sin_port)) "
            let verdict = log.first { $0.contains("event=slow_consumer") && $0.contains(peer) }
            print("good reader with \(r.seqs.count) messages: \(verdict ?? "no slow_consumer line for \(peer)")")
        }
    }

    private func percentile(_ xs: [Double], _ p: Double) -> Double {
        guard !xs.isEmpty else { return .infinity }
        let s = xs.sorted()
        return s[min(s.count - 1, Int((p / 100 * Double(s.count)).rounded(.up)) - 1)]
    }

    /// 100 good subscribers receive `count` messages; returns their p99 latency (ms).
    private func goodRun(_ hub: HubProcess, port: Int, count: Int, tag: String, during: () throws -> Void = {}) throws -> Double {
        let readers = try (0..<100).map { i -> Reader in
            let c = try ChatClient(port: port, token: TestHub.token("good\(i)-\(tag)", .admin))
            _ = try c.result("subscribe", ["channel": .string(Self.channel)])
            return Reader(c)
        }
        try during()
        let group = DispatchGroup()
        let deadline = Date().addingTimeInterval(60)
        for half in [Array(readers[..<50]), Array(readers[50...])] {
            group.enter()
            Thread.detachNewThread { Self.readAll(half, until: count, deadline: deadline); group.leave() }
        }
        _ = try publish(port: port, count: count, rate: Self.publishRate, tag: tag)
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        for r in readers {
            XCTAssertEqual(r.seqs.count, count, "a good subscriber received every message")
            XCTAssertEqual(r.seqs, r.seqs.sorted(), "in order")
            XCTAssertEqual(Set(r.seqs).count, r.seqs.count, "once")
        }
        printVerdicts(hub, on: readers.filter { $0.seqs.count < count })
        // Where the time goes: p99 per window of 100 messages (printed for the note).
        var windows: [String] = []
        for start in stride(from: 0, to: count, by: 100) {
            let slice = readers.flatMap { r in r.latenciesMs.count > start ? Array(r.latenciesMs[start..<min(r.latenciesMs.count, start + 100)]) : [] }
            windows.append(String(format: "%.0f", percentile(slice, 99)))
        }
        print("\(tag): p99 per 100 messages (ms): \(windows.joined(separator: " "))")
        return percentile(readers.flatMap(\.latenciesMs), 99)
    }

    func testTwoThousandSlowReadersAreCutOffWhileGoodSubscribersKeepUp() throws {
        _ = montrose_raise_open_file_limit()
        let data = TestDirectory.make("hub-slow")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (hub, port) = try startHub(data)
        defer { if hub.process.isRunning { hub.signal(SIGKILL) } }
        let pid = hub.process.processIdentifier
        let messages = Self.messageCount

        let t0 = Date()
        let baseline = try goodRun(hub, port: port, count: messages, tag: "base")
        print("baseline done after \(Date().timeIntervalSince(t0)) s, p99 \(baseline)")
        let rssBefore = Self.rssKiB(pid)

        var slow: [ChatClient] = []
        let peak = Atomic<Int>(rssBefore)
        let stopSampling = Atomic<Bool>(false)
        let sampling = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            while !stopSampling.load(ordering: .relaxed) {
                let r = Self.rssKiB(pid)
                if r > peak.load(ordering: .relaxed) { peak.store(r, ordering: .relaxed) }
                usleep(50_000)
            }
            sampling.signal()
        }
        let withSlow = try goodRun(hub, port: port, count: messages, tag: "slow") {
            for i in 0..<2_000 {
                // A small receive window from the start: what the kernel absorbs stays small.
                let c = try ChatClient(port: port, token: TestHub.token("slow\(i)", .admin), receiveBuffer: 4_096)
                _ = try c.result("subscribe", ["channel": .string(Self.channel)])
                slow.append(c) // and never read again
            }
            Thread.sleep(forTimeInterval: 1) // their connects and auths are not what is measured
            print("slow readers connected after \(Date().timeIntervalSince(t0)) s")
        }
        stopSampling.store(true, ordering: .relaxed)
        sampling.wait()
        let peakKiB = peak.load(ordering: .relaxed)
        let rssAfter = Self.rssKiB(pid)

        // The hub counted a 4009 close for every slow reader; each socket is closed (after the
        // close frame, or at the linger deadline when the reader never made room for it).
        let bridge = BridgeClient(port: bridgePort)
        XCTAssertEqual(try metric("montrose_slow_consumer_closes_total", bridge), 2_000, "every slow reader was closed with 4009")
        // A stuck reader's 4009 never leaves the hub's queue. When its closing time runs out the
        // hub resets the socket rather than closing it: an ordinary close would leave orphans
        // in FIN-WAIT-1 holding what the readers refused, probing zero windows. Looked
        // at before the readers drain anything (draining would let an orphan finish by itself).
        let settle = Date().addingTimeInterval(15)
        var openConnections = Int.max
        while Date() < settle {
            openConnections = try metric("montrose_connections", bridge) ?? .max
            if openConnections <= 1 { break } // the metrics request's own connection
            usleep(100_000)
        }
        XCTAssertLessThanOrEqual(openConnections, 1, "the hub let go of every slow reader")
        XCTAssertEqual(Self.socketsInFinWait1(port: port), 0, "no orphaned sockets left probing stuck readers")
        // Each socket has ended: the close frame if there was room for it, else the FIN after the
        // linger deadline (the hub does not keep a dead reader's connection). One poll for all.
        var fds = slow.map { pollfd(fd: $0.ws.socket.fd, events: Int16(POLLIN), revents: 0) }
        let waitUntil = Date().addingTimeInterval(15) // generous: a busy CI machine sweeps late
        var ended = 0
        while Date() < waitUntil {
            for i in fds.indices { fds[i].revents = 0 }
            _ = poll(&fds, nfds_t(fds.count), 100)
            // Drain what is readable; a socket at EOF reads 0.
            ended = 0
            var buf = [UInt8](repeating: 0, count: 65536)
            for i in fds.indices {
                var n = 0
                repeat { n = recv(fds[i].fd, &buf, buf.count, Int32(MSG_DONTWAIT)) } while n > 0
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { ended += 1 }
            }
            if ended == fds.count { break }
        }
        XCTAssertEqual(ended, 2_000, "every slow reader's connection was closed")
        let growthMiB = Double(peakKiB - rssBefore) / 1024
        XCTAssertLessThan(growthMiB, 64, "hub memory stays bounded: what the kernel and ≤ 1,024 frame refs per reader hold")
        // The goal of p99 within 2× of the run without the slow ones is measured and printed,
        // not asserted: timing goals are reported, not timed in tests. .ci/run runs this test
        // three more times against the release build and prints each ratio.
        print(String(format: "slow consumers: 2000 closed 4009; good p99 %.1f ms (without slow ones %.1f ms); hub RSS %d MiB before, peak %d MiB, %d MiB after",
                     withSlow, baseline, rssBefore / 1024, peakKiB / 1024, rssAfter / 1024)
              + "; hub binary " + HubProcess.executable.path) // which build: the goal is the release build's
        hub.signal(SIGTERM)
        _ = hub.waitForExit(timeout: 10)
    }

    /// Sends `count` messages to `channel` as fast as acks come back (64 in flight); the last seq.
    private func fill(_ pub: ChatClient, _ channel: String, count: Int, tag: String) throws -> Int64 {
        var sent = 0, acked = 0, inFlight = 0
        var lastSeq: Int64 = 0
        while acked < count {
            while inFlight < 64 && sent < count {
                try pub.ws.send(JSON.object(["id": .int(Int64(1_000_000 + sent)), "op": "send", "channel": .string(channel),
                                             "text": .string("\(tag) \(sent)"), "client_msg_id": .string("\(tag)-\(sent)")]).text)
                sent += 1; inFlight += 1
            }
            let v = try pub.next()
            guard v["id"] != nil else { continue }
            XCTAssertEqual(v["ok"]?.boolValue, true, v.text)
            lastSeq = max(lastSeq, v["result"]?["seq"]?.intValue ?? 0)
            inFlight -= 1; acked += 1
        }
        return lastSeq
    }

    /// A subscriber that reads every message push on its own thread, as a client catching up does.
    private final class CatchUpReader: @unchecked Sendable {
        let client: ChatClient
        var seqs: [Int64] = []
        var failure: String?
        init(_ c: ChatClient) { client = c }

        /// Reads until `total` messages came (or the stream broke); the seqs of the subscribe
        /// reply's first page count first.
        func read(first: [Int64], total: Int) {
            seqs = first + client.pushes.filter { $0["type"]?.stringValue == "message" }.compactMap { $0["seq"]?.intValue }
            do {
                while seqs.count < total {
                    let v = try client.next()
                    if v["type"]?.stringValue == "message", let seq = v["seq"]?.intValue { seqs.append(seq) }
                }
            } catch {
                failure = "\(error)"
            }
        }
    }

    /// A reader that stops reading in the middle of a paced catch-up (`subscribe` with `since`
    /// far back) gets nothing more queued: its next page waits for its socket to drain, and the
    /// live messages published meanwhile are held for it. The stuck rule counts those held
    /// pushes with the queued ones, so it is closed with 4009 like any stuck reader, a few
    /// hundred messages in, not at 10,000 held. A reader catching up the same backlog under the
    /// same live traffic that keeps reading is not cut off, and gets every message once, in order.
    func testAReaderThatStopsReadingDuringACatchUpIsCutOffAsStuck() throws {
        let data = TestDirectory.make("hub-catchup")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let (hub, port) = try startHub(data)
        defer { if hub.process.isRunning { hub.signal(SIGKILL) } }
        let bridge = BridgeClient(port: bridgePort)
        let channel = "conv:website:catchpub"
        let pub = try ChatClient(port: port, token: TestHub.token("catchpub", .client))
        let backlog = 3_000
        XCTAssertEqual(try fill(pub, channel, count: backlog, tag: "old"), Int64(backlog))

        // Both subscribe from the start, with small receive windows: their sockets refuse often.
        let stuck = try ChatClient(port: port, token: TestHub.token("catchup-stuck", .admin), receiveBuffer: 4_096)
        let first = try stuck.result("subscribe", ["channel": .string(channel), "since": .int(0)])
        XCTAssertEqual(first["more"]?.boolValue, true, "a paced catch-up follows the first page")
        for _ in 0..<100 { _ = try stuck.push("message") } // reads a page of the catch-up, then stops reading
        let good = try ChatClient(port: port, token: TestHub.token("catchup-good", .admin), receiveBuffer: 4_096)
        let goodFirst = try good.result("subscribe", ["channel": .string(channel), "since": .int(0)])
        let live = 2_000
        let reader = CatchUpReader(good)
        let firstSeqs = goodFirst["messages"]?.arrayValue?.compactMap { $0["seq"]?.intValue } ?? []
        let readerDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread { reader.read(first: firstSeqs, total: backlog + live); readerDone.signal() }

        // Live messages, 10 every 20 ms (500 a second), while the hub is watched for the cut.
        var cutAfter: Int?
        var closeCode: UInt16?
        let start = Date()
        for batch in 0..<(live / 10) {
            let due = start.addingTimeInterval(Double(batch) * 0.02)
            if due > Date() { Thread.sleep(until: due) }
            _ = try fill(pub, channel, count: 10, tag: "live\(batch)")
            if cutAfter == nil, try metric("montrose_slow_consumer_closes_total", bridge) ?? 0 > 0 {
                cutAfter = (batch + 1) * 10
                // Read what it was sent, now, within the linger time: its close frame follows.
                closeCode = try stuck.ws.readClose().closeCode
            }
        }
        XCTAssertNotNil(cutAfter, "the reader that stopped during its catch-up was cut off within \(live) live messages")
        XCTAssertLessThan(cutAfter ?? .max, 1_000, "cut off as stuck (over 256 behind, refused 250 ms), long before 10,000 held pushes")
        XCTAssertEqual(closeCode, 4009, "closed as a slow consumer")

        XCTAssertEqual(readerDone.wait(timeout: .now() + 60), .success)
        XCTAssertNil(reader.failure, "the reader that kept reading was not closed")
        XCTAssertEqual(reader.seqs, Array(1...Int64(backlog + live)), "it got the backlog and the live messages, once, in order")
        XCTAssertEqual(try metric("montrose_slow_consumer_closes_total", bridge), 1, "only the reader that stopped was cut off")
        print("catch-up: the stopped reader was cut off after \(cutAfter ?? -1) live messages, in \(String(format: "%.2f", Date().timeIntervalSince(start))) s of publishing")
        hub.signal(SIGTERM)
        _ = hub.waitForExit(timeout: 10)
        for line in hub.standardError.split(separator: "\n") where line.contains("event=slow_consumer") { print("hub: \(line)") }
    }
}
