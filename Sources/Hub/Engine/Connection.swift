import CLinux
import Glibc
import Core
import Protocol

// One client connection: its socket, optional TLS, output queue, and where it is in its life
// (reading HTTP requests, or a WebSocket). It belongs to exactly one loop for its whole life
// and only that loop's thread touches it. Closing never frees anything in the middle of
// dispatch: `terminate()` marks it closed and the loop closes the fd after the batch.

/// A connection's address across threads: its loop, slot and the slot's generation (a stale
/// id never reaches a newer connection that reused the slot).
struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    let loop: Int
    let slot: Int32
    let generation: UInt32
    var description: String { "\(loop).\(slot).\(generation)" }
}

enum ConnectionPhase { case http, webSocket, closed }

final class Connection {
    let id: ConnectionID
    let fd: Int32
    unowned let loop: EventLoop
    let listener: Listener
    let peer: String
    private(set) var phase = ConnectionPhase.http
    var limits: EngineLimits { listener.limits }

    // Transport.
    private let tls: TLSSession?
    private var output = OutputQueue()
    /// Where it stands in the loop's write scheduling (changed only by `WriteScheduler`).
    var flushMark = FlushMark()
    private var closeAfterFlush = false
    private var drainWaiter = false
    /// When the socket last refused more and has not made room since (0: it takes output). The
    /// moment of the refused write, not the start of the loop turn that made it: a turn can
    /// last longer than the stuck rule waits.
    private var refusedAt: Int64 = 0
    /// Pushes the handler holds for this connection outside the queue (live pushes waiting for
    /// a catch-up from the store, summed over its subscriptions): the stuck rule counts them.
    private var heldPushes = 0
    private(set) var lingering = false
    /// Waiting in the loop's list of linger closes (the sweep finds it again until it is closed).
    private var expiryScheduled = false
    /// The next moment the sweep must look at this connection (meaning depends on state).
    private var deadline: Int64

    // HTTP.
    private var http: HTTPRequestParser?
    private var awaitingResponse = false
    private var pendingHead = false
    private var pendingKeepAlive = true
    private(set) var requestsServed = 0

    // WebSocket.
    private var reader: WebSocketReader?
    private var deflater: Deflater?
    private(set) var handler: WebSocketHandler?
    private(set) var closeSent = false
    /// Over its output cap and waiting to be cut off (4009); takes no more frames meanwhile.
    private var cutPending = false
    private var closeNotified = false
    private var lastReceived: Int64 = 0
    private var pingSentAt: Int64 = 0

    init(id: ConnectionID, fd: Int32, loop: EventLoop, listener: Listener, peer: String, now: Int64) {
        self.id = id
        self.fd = fd
        self.loop = loop
        self.listener = listener
        self.peer = peer
        self.tls = listener.tls.flatMap { TLSSession(context: $0) }
        self.deadline = now + listener.limits.requestTimeoutMs
        self.http = HTTPRequestParser(limits: listener.limits.http)
    }

    // MARK: reading

    func onReadable() {
        let buffer = loop.readBuffer
        var total = 0
        while phase != .closed && total < limits.readBudget {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n > 0 {
                total += n
                receivedFromSocket(UnsafeMutableRawBufferPointer(start: buffer.baseAddress, count: n))
                if n < buffer.count { return }
            } else if n == 0 {
                peerClosed()
                return
            } else {
                let e = montrose_errno()
                if e == EINTR { continue }
                if e != EAGAIN && e != EWOULDBLOCK { terminate() }
                return
            }
        }
    }

    /// The socket reported room (EPOLLOUT): the peer is reading. The loop calls this before it
    /// handles the same event's input, so a reply to that input is not judged by an old refusal.
    func peerMadeRoom() { refusedAt = 0 }

    private func receivedFromSocket(_ bytes: UnsafeMutableRawBufferPointer) {
        guard let tls else { received(bytes); return }
        tls.feed(UnsafeRawBufferPointer(bytes))
        let plain = loop.plainBuffer
        loop: while phase != .closed {
            switch tls.read(into: plain) {
            case .bytes(let n): received(UnsafeMutableRawBufferPointer(start: plain.baseAddress, count: n))
            case .needMore: break loop
            case .closed: peerClosed(); break loop
            case .failed(let why):
                Log.debug("tls_error", ["conn": "\(id)", "peer": peer, "reason": why])
                // The fatal alert OpenSSL queued goes out first (best effort, a few bytes), so
                // a refused client learns why ("handshake failure", "protocol version")
                // instead of seeing the connection end.
                if let alert = tls.takeCiphertext() {
                    output.append(alert)
                    _ = output.flush(fd: fd, budget: limits.bytesPerFlush)
                }
                terminate()
                return
            }
        }
        // Handshake records (and alerts) produced while reading.
        if phase != .closed, let records = tls.takeCiphertext() {
            output.append(records)
            scheduleFlush()
        }
    }

    private func received(_ bytes: UnsafeMutableRawBufferPointer) {
        if lingering { return }
        switch phase {
        case .http:
            if http?.isIdle == true { deadline = loop.now + limits.requestTimeoutMs }
            http?.append(UnsafeRawBufferPointer(bytes))
            serveRequests()
        case .webSocket:
            readFrames(bytes)
        case .closed:
            return
        }
    }

    private func peerClosed() {
        if phase == .webSocket && !closeNotified {
            notifyClosed(nil) // 1006: the peer went away without a close frame
        }
        terminate()
    }

    // MARK: HTTP

    private func serveRequests() {
        while phase == .http && !awaitingResponse && !closeAfterFlush {
            let request: HTTPRequest?
            do {
                request = try http?.next()
            } catch {
                Log.debug("http_reject", ["conn": "\(id)", "peer": peer, "status": "\(error.status.code)", "reason": error.message])
                respond(.error(error))
                return
            }
            guard let request else {
                if http?.wantsContinue == true {
                    http?.wantsContinue = false
                    enqueue(Bytes(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)))
                }
                return
            }
            requestsServed += 1
            pendingHead = request.method == "HEAD"
            pendingKeepAlive = request.keepAlive
            switch listener.service.handle(request, on: self) {
            case .respond(let response):
                respond(response)
            case .later:
                awaitingResponse = true
            case .webSocket(let handler, let options):
                upgrade(request, handler: handler, options: options)
                return
            }
        }
    }

    /// Sends the response to the current request (services answering `.later` call this on
    /// the connection's loop), then goes on with any pipelined request. Every HTTP answer goes
    /// through here (routes, errors, refused upgrades; not the 101 of an accepted one), so this
    /// is where a TLS listener's Strict-Transport-Security header is added.
    func respond(_ response: HTTPResponse) {
        guard phase == .http else { return }
        var r = response
        if tls != nil, let sts = listener.strictTransportSecurity { r.headers.append(("Strict-Transport-Security", sts)) }
        if !pendingKeepAlive || loop.isShuttingDown { r.closeConnection = true }
        enqueue(Bytes(r.encoded(includeBody: !pendingHead)))
        awaitingResponse = false
        if r.closeConnection {
            closeAfterFlush = true
            scheduleFlush()
            return
        }
        deadline = loop.now + limits.keepAliveIdleMs
        if http?.bufferedCount ?? 0 > 0 { serveRequests() }
    }

    private func upgrade(_ request: HTTPRequest, handler: WebSocketHandler, options: HandshakeOptions) {
        let accept: HandshakeAccept
        switch Handshake.accept(request, options: options) {
        case .failure(let refusal):
            respond(refusal.response)
            return
        case .success(let a):
            accept = a
        }
        var inflater: Inflater?
        if let d = accept.deflate {
            inflater = Inflater(noContextTakeover: d.clientNoContextTakeover)
            deflater = Deflater(parameters: d)
            if inflater == nil || deflater == nil {
                respond(.error(.internalServerError, "compression unavailable", closeConnection: true))
                return
            }
        }
        let leftover = http?.takeBuffered() ?? []
        http = nil
        phase = .webSocket
        reader = WebSocketReader(maxMessageSize: limits.maxMessage, inflater: inflater)
        self.handler = handler
        lastReceived = loop.now
        enqueue(Bytes(accept.response))
        loop.webSocketOpened()
        handler.didOpen(self)
        if !leftover.isEmpty && phase == .webSocket {
            var copy = leftover
            copy.withUnsafeMutableBytes { readFrames($0) }
        }
    }

    // MARK: WebSocket

    private func readFrames(_ bytes: UnsafeMutableRawBufferPointer) {
        guard reader != nil else { return } // failed or finished: input is discarded
        lastReceived = loop.now
        pingSentAt = 0
        var events = loop.takeEventScratch()
        var failure: WebSocketError?
        do {
            try reader?.feed(bytes, into: &events)
        } catch {
            failure = error
        }
        for event in events {
            if phase != .webSocket { break }
            handle(event)
        }
        events.removeAll(keepingCapacity: true)
        loop.returnEventScratch(events)
        if let failure, phase == .webSocket {
            Log.debug("ws_protocol_error", ["conn": "\(id)", "peer": peer, "code": "\(failure.closeCode)", "reason": failure.reason])
            fail(code: failure.closeCode, reason: failure.reason)
        }
    }

    private func handle(_ event: WebSocketEvent) {
        switch event {
        case .message(let opcode, let payload):
            if !closeSent { handler?.didReceive(self, opcode: opcode, payload: payload) }
        case .ping(let payload):
            if !closeSent { enqueue(Bytes.frame(.pong, payload)) }
        case .pong:
            break
        case .close(let code, _):
            reader = nil
            if closeSent {
                // The peer answered our close: the handshake is complete.
                closeAfterFlush = true
                scheduleFlush()
            } else {
                // Echo the peer's code (§5.5.1), then close the TCP connection.
                enqueue(Bytes(FrameEncoder.closeFrame(code: code)))
                closeSent = true
                notifyClosed(code)
                closeAfterFlush = true
                deadline = loop.now + limits.lingerMs
                scheduleFlush()
            }
        }
    }

    /// Sends a data message, compressed when permessage-deflate is on and it is worth it.
    func send(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard phase == .webSocket, !closeSent, !cutPending else { return }
        if let deflater, payload.count >= limits.compressionThreshold {
            let compressed = deflater.deflate(payload)
            compressed.withUnsafeBytes { enqueue(Bytes.frame(opcode, $0, rsv1: true)) }
        } else {
            enqueue(Bytes.frame(opcode, payload))
        }
        checkBackpressure()
    }

    func send(_ opcode: Opcode, _ payload: [UInt8]) {
        payload.withUnsafeBytes { send(opcode, $0) }
    }

    /// Frames queued and not yet written (what producers that can wait look at).
    var queuedFrames: Int { output.frames }

    /// Asks for one `didDrain` call once everything queued so far is written.
    func notifyWhenDrained() { drainWaiter = true }

    /// The handler now holds `count` pushes for this connection outside the queue. A reader
    /// that stops reading in the middle of a catch-up gets nothing queued while its live pushes
    /// are held, so a growing count is when the stuck rule must look at it.
    func setHeldPushes(_ count: Int) {
        let grew = count > heldPushes
        heldPushes = count
        if grew { checkBackpressure() }
    }

    /// Queues an already encoded, uncompressed frame (shared by every subscriber of a publish);
    /// false when the connection takes no more (closing, or waiting to be cut off).
    @discardableResult
    func sendFrame(_ frame: Bytes) -> Bool {
        guard phase == .webSocket, !closeSent, !cutPending else { return false }
        enqueue(frame)
        checkBackpressure()
        return true
    }

    /// Starts the closing handshake (server side). The connection ends when the peer answers,
    /// or after the linger time if it does not.
    func close(_ code: CloseCode, reason: String = "") {
        guard phase == .webSocket, !closeSent else {
            if phase == .http { closeAfterFlush = true; scheduleFlush() }
            return
        }
        dropBacklogOfPendingCut()
        enqueue(Bytes(FrameEncoder.closeFrame(code: code, reason: reason)))
        closeSent = true
        deadline = loop.now + limits.closeHandshakeMs
        notifyClosed(code)
        scheduleFlush()
    }

    /// Closes with `code` without waiting for the peer's close frame (a broken rule).
    func fail(code: CloseCode, reason: String) {
        guard phase == .webSocket else { return }
        reader = nil
        if !closeSent {
            dropBacklogOfPendingCut()
            enqueue(Bytes(FrameEncoder.closeFrame(code: code, reason: reason)))
            closeSent = true
            notifyClosed(code)
        }
        closeAfterFlush = true
        deadline = loop.now + limits.lingerMs
        scheduleFlush()
    }

    /// A slow consumer is cut off: over the byte cap; or, while its socket refuses output,
    /// over the frame cap, or over `maxStalledFrames` pushes behind (queued or held) with the
    /// socket refusing for `stalledMs`. The frame limits judge the reader, not the loop: a busy
    /// turn (hundreds of publications from the mailbox in a debug build) queues frames before
    /// the loop writes, and a reader's report of room (EPOLLOUT) can wait in the same epoll
    /// batch behind that work. So they apply only after a write was refused, the refusal is
    /// timed from that write, and the socket is asked whether it still refuses before the verdict.
    private func checkBackpressure() {
        guard !cutPending, phase == .webSocket else { return }
        if output.bytes <= limits.effectiveMaxOutputBytes {
            guard refusedAt > 0 else { return }
            let stuck = output.frames + heldPushes > limits.maxStalledFrames && loop.now - refusedAt >= limits.stalledMs
            guard stuck || output.frames > limits.maxOutputFrames else { return }
            if Socket.acceptsOutput(fd) {
                // It made room the loop has not handled yet: not stuck (the EPOLLOUT that says
                // so is still pending and writes what waits).
                refusedAt = 0
                return
            }
        }
        // A slow consumer: it takes nothing more, and is cut off after this turn's writes.
        cutPending = true
        loop.closes.scheduleCut(self)
    }

    /// Cuts off a slow consumer: drops what it has not started to receive and tells it to
    /// recover with `since` (4009).
    func cutOff() {
        guard phase == .webSocket, !closeSent else {
            cutPending = false // closed or closing meanwhile: its close frame must not be dropped
            return
        }
        Log.info("slow_consumer", ["conn": "\(id)", "peer": peer, "buffered": "\(output.bytes)", "frames": "\(output.frames)",
                                   "held": "\(heldPushes)", "refused_ms": refusedAt > 0 ? "\(loop.now - refusedAt)" : "0"])
        loop.shared.slowConsumerCloses.add(1, ordering: .relaxed)
        if tls != nil {
            // Queued TLS records cannot be dropped without breaking the stream.
            notifyClosed(.slowConsumer)
            terminate()
            return
        }
        output.dropUnstarted()
        cutPending = false
        fail(code: .slowConsumer, reason: "slow consumer")
    }

    /// A connection waiting to be cut off that closes for another reason first: its backlog
    /// would never be read, so the close frame goes right after what is already on its way.
    private func dropBacklogOfPendingCut() {
        guard cutPending, tls == nil else { return }
        output.dropUnstarted()
    }

    private func notifyClosed(_ code: CloseCode?) {
        guard !closeNotified else { return }
        closeNotified = true
        if phase == .webSocket || handler != nil {
            loop.webSocketClosed()
            handler?.didClose(self, code: code)
        }
    }

    // MARK: writing

    private func enqueue(_ bytes: Bytes) {
        guard phase != .closed else { return }
        if let tls {
            guard tls.write(bytes.buffer) else { terminate(); return }
            if let records = tls.takeCiphertext() { output.append(records) }
        } else {
            output.append(bytes)
        }
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard phase != .closed else { return }
        loop.writes.schedule(self)
    }

    /// Writes what the socket takes; called by the loop's `WriteScheduler` after each batch
    /// and on EPOLLOUT.
    func flush() {
        guard phase != .closed else { return }
        switch output.flush(fd: fd, budget: limits.bytesPerFlush) {
        case .drained:
            refusedAt = 0
            if flushMark.polling { loop.setWriteInterest(self, false) }
            if drainWaiter {
                drainWaiter = false
                handler?.didDrain(self)
            }
            if closeAfterFlush && !lingering { startLinger() }
        case .partial:
            if refusedAt == 0 { refusedAt = monotonicMillis() }
            if !flushMark.polling { loop.setWriteInterest(self, true) }
        case .failed:
            terminate()
        }
    }

    /// After the last byte: send FIN and wait briefly for the peer's, discarding what it
    /// sends, so our final bytes are not destroyed by a reset (a "lingering close").
    private func startLinger() {
        if let tls {
            tls.shutdown()
            if let records = tls.takeCiphertext() {
                output.append(records)
                _ = output.flush(fd: fd, budget: limits.bytesPerFlush)
            }
        }
        lingering = true
        deadline = loop.now + limits.lingerMs
        shutdown(fd, Int32(SHUT_WR))
    }

    /// The closing time ran out. A peer that never took our last bytes is reset: it is not
    /// reading, and an ordinary close would leave the kernel holding what it refused, probing
    /// its zero window. The bytes may be in our queue (a cut-off reader's 4009 behind what it
    /// refused) or already in the kernel's (the 4009 fitted, or our FIN is unacknowledged).
    func expire() {
        guard phase != .closed else { return }
        if !output.isEmpty || Socket.peerOwesAcknowledgement(fd) { Socket.resetOnClose(fd) }
        terminate()
    }

    /// Ends the connection now; the loop releases the fd after the current batch.
    func terminate() {
        guard phase != .closed else { return }
        if phase == .webSocket { notifyClosed(nil) }
        phase = .closed
        reader = nil
        http = nil
        output.removeAll()
        loop.retire(self)
    }

    // MARK: timers

    /// Called by the loop's sweep about once a second.
    func sweep(now: Int64) {
        if lingering || closeSent || closeAfterFlush {
            // Closed within a few turns; the sweep finds it again until then.
            if now >= deadline && !expiryScheduled {
                expiryScheduled = true
                loop.closes.scheduleExpiry(self)
            }
            return
        }
        switch phase {
        case .http:
            if awaitingResponse { return }
            guard now >= deadline else { return }
            if http?.isIdle == true && requestsServed > 0 {
                terminate() // idle keep-alive
            } else {
                Log.debug("request_timeout", ["conn": "\(id)", "peer": peer])
                pendingKeepAlive = false
                pendingHead = false
                respond(.error(HTTPStatus(408, "Request Timeout"), "request not received in time", code: "bad_request", closeConnection: true))
            }
        case .webSocket:
            handler?.tick(self, now: now)
            guard phase == .webSocket, !closeSent else { return }
            if pingSentAt > 0 {
                if now - pingSentAt >= limits.pongTimeoutMs { fail(code: .goingAway, reason: "ping timeout") }
            } else if now - lastReceived >= limits.pingIntervalMs {
                pingSentAt = now
                enqueue(Bytes.frame(.ping, []))
            }
        case .closed:
            return
        }
    }

    /// Server shutdown: WebSockets get 1001, idle HTTP connections close, busy ones close
    /// after their response.
    func beginShutdown() {
        switch phase {
        case .webSocket:
            // 1001, flushed, then FIN: the hub does not wait for each client's close reply.
            if !closeSent { fail(code: .goingAway, reason: "server shutting down") }
        case .http:
            if awaitingResponse { pendingKeepAlive = false } else if http?.isIdle == true { terminate() } else {
                closeAfterFlush = true
                scheduleFlush()
            }
        case .closed:
            return
        }
    }
}
