import Glibc

// A set of client WebSockets on one Poller, opened a few at a time: at most `concurrency`
// are between their first connect attempt and being settled (ready or failed, as the
// scenario decides), so a large set does not overrun the hub's accept backlog in one burst.
// Output queued during a loop turn is written once at its end, one send() per connection.
final class ClientPool {
    let count: Int
    private let host: String
    /// Connection `i` goes to `ports[i % ports.count]` (several hub nodes: spread round robin).
    private let ports: [Int]
    private let concurrency: Int
    private let path: (Int) -> String
    /// SO_RCVBUF for connection `i`, or nil for the kernel's default.
    private let receiveBuffer: (Int) -> Int32?
    private let poller = Poller()
    private var conns: [WebSocketConnection?]
    private var settledFlags: [Bool]
    private var toFlush: [Int] = []
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
    /// Connections whose first attempt has started.
    private(set) var opened = 0
    private(set) var settled = 0
    /// When the first connection attempt started (0 before).
    private(set) var firstAttempt: UInt64 = 0
    /// When each connection's attempt started (0 before).
    private(set) var startedAt: [UInt64]

    init(count: Int, host: String, ports: [Int], concurrency: Int, path: @escaping (Int) -> String,
         receiveBuffer: @escaping (Int) -> Int32? = { _ in nil }) {
        self.count = count
        self.host = host
        self.ports = ports
        self.concurrency = concurrency
        self.path = path
        self.receiveBuffer = receiveBuffer
        conns = Array(repeating: nil, count: count)
        settledFlags = Array(repeating: false, count: count)
        startedAt = Array(repeating: 0, count: count)
    }

    /// A pool for the hub a scenario's common flags point at.
    convenience init(count: Int, common: CommonOptions, path: @escaping (Int) -> String,
                     receiveBuffer: @escaping (Int) -> Int32? = { _ in nil }) {
        self.init(count: count, host: common.url.host, ports: common.ports, concurrency: common.concurrency, path: path,
                  receiveBuffer: receiveBuffer)
    }

    deinit {
        closeAll()
        scratch.deallocate()
    }

    var allSettled: Bool { settled == count }

    /// Starts connections until `concurrency` are unsettled or all have started. A socket that
    /// cannot even be created is reported through `webSocketClosed` at once.
    func openMore<D: WebSocketDelegate>(_ d: D) {
        while opened < count && opened - settled < concurrency {
            let i = opened
            opened += 1
            startedAt[i] = Clock.nanos()
            if firstAttempt == 0 { firstAttempt = startedAt[i] }
            var err: Int32 = 0
            conns[i] = WebSocketConnection(index: i, host: host, port: ports[i % ports.count], path: path(i), receiveBuffer: receiveBuffer(i),
                                           poller: poller, failure: &err)
            if conns[i] == nil { d.webSocketClosed(i, reason: "socket: \(String(cString: strerror(err)))") }
        }
    }

    /// Opens every connection (at most `concurrency` handshakes at a time) until each has
    /// settled or `timeout` seconds have passed; the ones still unsettled are settled and
    /// closed, and returned for the scenario to count as failed.
    func openAll<D: WebSocketDelegate>(_ d: D, timeout: Double) -> [Int] {
        let deadline = Clock.nanos() + UInt64(timeout * 1e9)
        while !allSettled && Clock.nanos() < deadline {
            openMore(d)
            turn(timeoutMs: 20, d)
        }
        let late = settledFlags.indices.filter { !settledFlags[$0] }
        for i in late {
            settle(i)
            close(i)
        }
        return late
    }

    /// Marks connection `i` ready or failed: it no longer counts against `concurrency`.
    func settle(_ i: Int) {
        guard !settledFlags[i] else { return }
        settledFlags[i] = true
        settled += 1
    }

    func isSettled(_ i: Int) -> Bool { settledFlags[i] }

    func isOpen(_ i: Int) -> Bool { conns[i]?.state == .open }

    /// Queues one text message on connection `i` (dropped if it is not open).
    func send(_ i: Int, _ bytes: UnsafeRawBufferPointer) {
        guard let c = conns[i] else { return }
        if c.queueText(bytes) { toFlush.append(i) }
    }

    func send(_ i: Int, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { send(i, $0) }
    }

    /// One loop turn: waits up to `timeoutMs` for events, handles them, writes what was queued.
    func turn<D: WebSocketDelegate>(timeoutMs: Int32, _ d: D) {
        poller.wait(timeoutMs: timeoutMs) { token, events in
            let i = Int(token)
            guard let c = conns[i] else { return }
            c.handle(events, scratch: scratch, d)
            if c.state == .closed { conns[i] = nil }
        }
        flush(d)
    }

    /// Writes everything queued since the last turn.
    func flush<D: WebSocketDelegate>(_ d: D) {
        guard !toFlush.isEmpty else { return }
        for i in toFlush {
            guard let c = conns[i] else { continue }
            c.flush(d)
            if c.state == .closed { conns[i] = nil }
        }
        toFlush.removeAll(keepingCapacity: true)
    }

    /// Connection `i` stops reading for good (see `WebSocketConnection.stopReading`).
    func stopReading(_ i: Int) { conns[i]?.stopReading() }

    /// Whether the server has ended connection `i`, one that stopped reading (or it is gone).
    func hasEnded(_ i: Int) -> Bool { conns[i]?.hasEnded(scratch: scratch) ?? true }

    /// Closes connection `i` from our side (a 1000 close frame when open); no callback follows.
    func close(_ i: Int) {
        conns[i]?.close()
        conns[i] = nil
    }

    func closeAll() {
        for i in conns.indices { close(i) }
    }
}
