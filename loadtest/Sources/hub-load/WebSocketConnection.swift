import CLinux
import Foundation
import Glibc
import Protocol

/// What a connection reports to its owner, by connection index.
protocol WebSocketDelegate: AnyObject {
    func webSocketOpened(_ index: Int)
    /// One complete text message; the bytes are valid only during the call.
    func webSocket(_ index: Int, text: UnsafeRawBufferPointer)
    func webSocketClosed(_ index: Int, reason: String)
}

// One client WebSocket on a non-blocking socket, driven by the owner's Poller: TCP connect,
// HTTP upgrade (no extensions offered), then frames. Output is queued and written with one
// send() per flush; the owner flushes every connection it wrote to once per loop turn.
// Complete frames are handed over straight from the read buffer when nothing is pending,
// so the common case copies nothing.
final class WebSocketConnection {
    enum State { case connecting, upgrading, open, closed }

    let index: Int
    private(set) var state = State.connecting
    private let fd: Int32
    private unowned let poller: Poller
    private let key: String
    private let request: [UInt8]
    private var input: [UInt8] = []
    private var output: [UInt8] = []
    private var written = 0
    private var pollingWrite = true
    private var fragments: [UInt8]?
    private var rng: UInt64
    /// True while output is queued and the owner has not flushed it yet.
    var queued = false

    /// Starts connecting; nil (with the errno) if the socket could not even be created.
    init?(index: Int, host: String, port: Int, path: String, receiveBuffer: Int32? = nil, poller: Poller, failure: inout Int32) {
        let fd = TCP.connect(host: host, port: port, receiveBuffer: receiveBuffer)
        guard fd >= 0 else { failure = -fd; return nil }
        self.index = index
        self.fd = fd
        self.poller = poller
        rng = 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1) ^ Clock.nanos()
        var k = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { k[i] = UInt8.random(in: 0...255) }
        key = Data(k).base64EncodedString()
        request = Array(("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\nUser-Agent: hub-load\r\n\r\n").utf8)
        poller.add(fd, token: UInt64(index), events: Poller.readable | Poller.writable)
    }

    // MARK: events

    func handle<D: WebSocketDelegate>(_ events: UInt32, scratch: UnsafeMutableRawBufferPointer, _ d: D) {
        if state == .connecting {
            guard events & (Poller.writable | Poller.failed) != 0 else { return }
            let err = TCP.connectError(fd)
            if err != 0 { return fail("connect: \(String(cString: strerror(err)))", d) }
            state = .upgrading
            output.append(contentsOf: request)
            flush(d)
            if state == .closed { return }
        }
        if events & (Poller.readable | Poller.failed) != 0 { readAvailable(scratch, d) }
        if state != .closed && pollingWrite && events & Poller.writable != 0 { flush(d) }
    }

    private func readAvailable<D: WebSocketDelegate>(_ scratch: UnsafeMutableRawBufferPointer, _ d: D) {
        // At most 4 reads per turn: fairness between connections.
        for _ in 0..<4 {
            let n = read(fd, scratch.baseAddress, scratch.count)
            if n > 0 {
                consume(UnsafeRawBufferPointer(rebasing: scratch[0..<n]), d)
                if state == .closed || n < scratch.count { return }
            } else if n == 0 {
                return fail("connection closed by the server (EOF)", d)
            } else {
                let e = montrose_errno()
                if e == EAGAIN || e == EWOULDBLOCK { return }
                if e == EINTR { continue }
                return fail("read: \(String(cString: strerror(e)))", d)
            }
        }
    }

    private func consume<D: WebSocketDelegate>(_ bytes: UnsafeRawBufferPointer, _ d: D) {
        if state == .upgrading {
            input.append(contentsOf: bytes)
            guard let end = input.firstRange(of: [13, 10, 13, 10]) else {
                if input.count > 16384 { fail("upgrade response head over 16 KiB", d) }
                return
            }
            let head = String(decoding: input[..<end.lowerBound], as: UTF8.self)
            let rest = Array(input[end.upperBound...])
            input.removeAll()
            if let problem = checkUpgrade(head) { return fail(problem, d) }
            state = .open
            d.webSocketOpened(index)
            if !rest.isEmpty && state == .open { rest.withUnsafeBytes { consume($0, d) } }
            return
        }
        guard state == .open else { return }
        if input.isEmpty {
            let used = parseFrames(bytes, d)
            if state == .open && used < bytes.count { input.append(contentsOf: bytes[used...]) }
        } else {
            input.append(contentsOf: bytes)
            let used = input.withUnsafeBytes { parseFrames($0, d) }
            if state != .open { return }
            if used == input.count { input.removeAll(keepingCapacity: true) } else { input.removeFirst(used) }
        }
    }

    private func checkUpgrade(_ head: String) -> String? {
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        guard let status = lines.first, status.hasPrefix("HTTP/1.1 101") else {
            return "upgrade refused: \(lines.first ?? "")"
        }
        var accept: Substring?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].drop { $0 == " " }
            if name == "sec-websocket-accept" { accept = value }
            if name == "sec-websocket-extensions" { return "server chose an extension we did not offer: \(value)" }
        }
        guard accept.map(String.init) == Handshake.acceptValue(forKey: key) else { return "wrong Sec-WebSocket-Accept" }
        return nil
    }

    /// Handles every complete frame at the start of `b`; returns the bytes used.
    private func parseFrames<D: WebSocketDelegate>(_ b: UnsafeRawBufferPointer, _ d: D) -> Int {
        var at = 0
        while state == .open {
            let rest = UnsafeRawBufferPointer(rebasing: b[at...])
            switch FrameCodec.header(rest) {
            case .needMore:
                return at
            case .invalid(let why):
                fail("protocol error: \(why)", d)
                return at
            case .frame(let h):
                let total = h.headerLength + h.payloadLength
                guard rest.count >= total else { return at }
                let payload = UnsafeRawBufferPointer(rebasing: rest[h.headerLength..<total])
                at += total
                frame(h, payload, d)
            }
        }
        return at
    }

    private func frame<D: WebSocketDelegate>(_ h: FrameCodec.Header, _ payload: UnsafeRawBufferPointer, _ d: D) {
        switch h.opcode {
        case FrameCodec.text, FrameCodec.binary:
            guard fragments == nil else { return fail("protocol error: new message inside a fragmented one", d) }
            if h.fin {
                d.webSocket(index, text: payload)
            } else {
                fragments = Array(payload)
            }
        case FrameCodec.continuation:
            guard var f = fragments else { return fail("protocol error: continuation without a message", d) }
            f.append(contentsOf: payload)
            guard f.count <= FrameCodec.maxMessage else { return fail("message over \(FrameCodec.maxMessage) bytes", d) }
            if h.fin {
                fragments = nil
                f.withUnsafeBytes { d.webSocket(index, text: $0) }
            } else {
                fragments = f
            }
        case FrameCodec.ping:
            queueFrame(FrameCodec.pong, payload)
        case FrameCodec.pong:
            break
        case FrameCodec.close:
            var code = 1005
            if payload.count >= 2 { code = Int(payload[0]) << 8 | Int(payload[1]) }
            let reason = payload.count > 2 ? String(decoding: payload[2...], as: UTF8.self) : ""
            var echo = UInt16(code == 1005 ? 1000 : code).bigEndian
            withUnsafeBytes(of: &echo) { _ = queueFrame(FrameCodec.close, $0) }
            flush(d)
            fail("closed by the server with \(code)\(reason.isEmpty ? "" : " \(reason)")", d)
        default:
            fail("protocol error: opcode \(h.opcode)", d)
        }
    }

    // MARK: output

    /// Queues a text message; returns true when the connection had nothing queued before (the
    /// owner then adds it to its flush list).
    @discardableResult
    func queueText(_ payload: UnsafeRawBufferPointer) -> Bool {
        queueFrame(FrameCodec.text, payload)
    }

    @discardableResult
    private func queueFrame(_ opcode: UInt8, _ payload: UnsafeRawBufferPointer) -> Bool {
        guard state == .open else { return false }
        rng ^= rng << 13
        rng ^= rng >> 7
        rng ^= rng << 17
        FrameCodec.appendMasked(opcode: opcode, payload, mask: UInt32(truncatingIfNeeded: rng), into: &output)
        let first = !queued
        queued = true
        return first
    }

    /// Writes what is queued; waits for EPOLLOUT if the socket is full.
    func flush<D: WebSocketDelegate>(_ d: D) {
        queued = false
        guard state != .closed else { return }
        while written < output.count {
            let n = output.withUnsafeBytes { p in
                send(fd, p.baseAddress! + written, p.count - written, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                written += n
                continue
            }
            let e = montrose_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                if !pollingWrite {
                    pollingWrite = true
                    poller.modify(fd, token: UInt64(index), events: Poller.readable | Poller.writable)
                }
                return
            }
            return fail("write: \(String(cString: strerror(e)))", d)
        }
        output.removeAll(keepingCapacity: true)
        written = 0
        if pollingWrite && state != .connecting {
            pollingWrite = false
            poller.modify(fd, token: UInt64(index), events: Poller.readable)
        }
    }

    // MARK: closing

    private func fail<D: WebSocketDelegate>(_ reason: String, _ d: D) {
        guard state != .closed else { return }
        shut()
        d.webSocketClosed(index, reason: reason)
    }

    /// Stops reading for good (a stalled reader): the socket leaves the poller, so what the
    /// server sends piles up in the kernel until the receive window is full. `hasEnded`
    /// tells later whether the server has closed it.
    func stopReading() {
        guard state != .closed else { return }
        poller.remove(fd)
    }

    /// For a connection that stopped reading: drains what is queued without blocking and says
    /// whether the server has ended the connection (end of stream or a reset).
    func hasEnded(scratch: UnsafeMutableRawBufferPointer) -> Bool {
        guard state != .closed else { return true }
        while true {
            let n = recv(fd, scratch.baseAddress, scratch.count, Int32(MSG_DONTWAIT))
            if n > 0 { continue }
            if n == 0 { return true }
            let e = montrose_errno()
            if e == EINTR { continue }
            return e != EAGAIN && e != EWOULDBLOCK
        }
    }

    /// Ends the connection from our side: a 1000 close frame if open (best effort), then the socket.
    func close() {
        guard state != .closed else { return }
        if state == .open {
            var code = UInt16(1000).bigEndian
            withUnsafeBytes(of: &code) { _ = queueFrame(FrameCodec.close, $0) }
            output.withUnsafeBytes { p in
                _ = send(fd, p.baseAddress! + written, p.count - written, Int32(MSG_NOSIGNAL))
            }
        }
        shut()
    }

    private func shut() {
        state = .closed
        poller.remove(fd)
        Glibc.close(fd)
        output = []
        fragments = nil
    }
}
