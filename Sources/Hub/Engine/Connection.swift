import CLinux
import Glibc
import Core
import Protocol

// One client connection: its socket, optional TLS, output queue, and where it is in its life
// (`ConnectionLifecycle`: reading HTTP requests, a WebSocket, closing, lingering). It belongs to
// exactly one loop for its whole life and only that loop's thread touches it. Every change of
// its life goes through `lifecycle.handle`, and this class carries out the steps it answers.
// Closing never frees anything in the middle of dispatch: `terminate()` marks it closed and the
// loop closes the fd after the batch.

final class Connection {
    let id: ConnectionID
    let fd: Int32
    unowned let loop: EventLoop
    /// The loop's write scheduler, held directly: scheduling a flush is on every send, and
    /// reaching it through the unowned `loop` costs a strong-retain check each time.
    private let writes: WriteScheduler
    let listener: Listener
    let peer: PeerAddress
    private var lifecycle: ConnectionLifecycle
    // Read from `lifecycle` after each transition (it changes only in `handle`): the per-frame
    // checks read stored values instead of matching the enum, which in a release build costs a
    // dynamic exclusivity check on every read.
    private(set) var phase: ConnectionPhase = .http
    /// An open WebSocket not waiting for its cut: it takes frames to send.
    private(set) var takesFrames = false
    /// An open WebSocket (cut pending or not): messages and pings from the peer are answered.
    private var isOpenWebSocket = false
    var limits: EngineLimits { listener.limits }

    // Transport.
    private let tls: TLSSession?
    private var output = OutputQueue()
    /// Where it stands in the loop's write scheduling (changed only by `WriteScheduler`).
    var flushMark = FlushMark()
    private var drainWaiter = false
    /// When the socket last refused more and has not made room since (0: it takes output). The
    /// moment of the refused write, not the start of the loop turn that made it: a turn can
    /// last longer than the stuck rule waits.
    private var refusedAt: Int64 = 0
    /// Pushes the handler holds for this connection outside the queue (live pushes waiting for
    /// a catch-up from the store, summed over its subscriptions): the stuck rule counts them.
    private var heldPushes = 0

    // HTTP.
    /// Boxed: a WebSocket drops it at the upgrade, and a nil reference is all it then keeps
    /// (the parser inline would stay in every connection's object for its whole life).
    private var http: HTTPParserBox?

    // WebSocket.
    private var reader: WebSocketReader?
    private var deflater: Deflater?
    private(set) var handler: WebSocketHandler?

    init(id: ConnectionID, fd: Int32, loop: EventLoop, listener: Listener, peer: PeerAddress, now: Int64) {
        self.id = id
        self.fd = fd
        self.loop = loop
        self.writes = loop.writes
        self.listener = listener
        self.peer = peer
        let tls = listener.tls.flatMap { TLSSession(context: $0) }
        self.tls = tls
        self.lifecycle = ConnectionLifecycle(tls: tls != nil, now: now, limits: listener.limits)
        self.http = HTTPParserBox(HTTPRequestParser(limits: listener.limits.http))
    }

    // MARK: reading

    func onReadable() {
        let buffer = loop.readBuffer
        var total = 0
        while phase != .closed && total < limits.readBudget {
            // recv(2), not read(2): a socket's own call, without the file layer's steps.
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
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
                Log.debug("tls_error", ["conn": "\(id)", "peer": peer.description, "reason": why])
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
        switch lifecycle.input {
        case .requests:
            handle(.requestBytes(parserIdle: http?.parser.isIdle == true))
            http?.parser.append(UnsafeRawBufferPointer(bytes))
            serveRequests()
        case .frames:
            readFrames(bytes)
        case .discarded:
            return
        }
    }

    /// The peer went away (a WebSocket without a close frame is told 1006).
    private func peerClosed() { handle(.peerEOF) }

    // MARK: HTTP

    private func serveRequests() {
        while lifecycle.readsRequests {
            let request: HTTPRequest?
            do {
                request = try http?.parser.next()
            } catch {
                Log.debug("http_reject", ["conn": "\(id)", "peer": peer.description, "status": "\(error.status.code)", "reason": error.message])
                respond(.error(error))
                return
            }
            guard let request else {
                if http?.parser.wantsContinue == true {
                    http?.parser.wantsContinue = false
                    enqueue(Bytes.copy(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)))
                }
                return
            }
            http?.requestsServed += 1
            handle(.requestParsed(head: request.method == "HEAD", keepAlive: request.keepAlive))
            switch listener.service.handle(request, on: self) {
            case .respond(let response):
                respond(response)
            case .later:
                break // the service calls `respond` when it can
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
        guard let shape = lifecycle.responseShape else { return }
        var r = response
        if tls != nil, let sts = listener.strictTransportSecurity { r.headers.append(("Strict-Transport-Security", sts)) }
        if !shape.keepAlive || loop.isShuttingDown { r.closeConnection = true }
        enqueue(Bytes.copy(r.encoded(includeBody: !shape.head)))
        handle(.responded(closeConnection: r.closeConnection))
        if !r.closeConnection && http?.parser.bufferedCount ?? 0 > 0 { serveRequests() }
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
        let leftover = http?.parser.takeBuffered() ?? []
        http = nil
        handle(.upgraded)
        reader = WebSocketReader(maxMessageSize: limits.maxMessage, inflater: inflater)
        self.handler = handler
        enqueue(Bytes.copy(accept.response))
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
        handle(.frameBytes)
        var events = loop.takeEventScratch()
        var failure: WebSocketError?
        do {
            try reader?.feed(bytes, into: &events)
        } catch {
            failure = error
        }
        let input = UnsafeRawBufferPointer(bytes)
        for event in events {
            if phase != .webSocket { break }
            dispatch(event, input: input)
        }
        events.removeAll(keepingCapacity: true)
        loop.returnEventScratch(events)
        if let failure, phase == .webSocket {
            Log.debug("ws_protocol_error", ["conn": "\(id)", "peer": peer.description, "code": "\(failure.closeCode)", "reason": failure.reason])
            fail(code: failure.closeCode, reason: failure.reason)
        }
    }

    /// `input`: what the reader was fed, where a message read in place lies.
    private func dispatch(_ event: WebSocketEvent, input: UnsafeRawBufferPointer) {
        switch event {
        case .messageInInput(let opcode, let range):
            if isOpenWebSocket { handler?.didReceive(self, opcode: opcode, payload: UnsafeRawBufferPointer(rebasing: input[range])) }
        case .message(let opcode, let payload):
            if isOpenWebSocket { payload.withUnsafeBytes { handler?.didReceive(self, opcode: opcode, payload: $0) } }
        case .ping(let payload):
            if isOpenWebSocket { payload.withUnsafeBytes { enqueueOwnFrame(.pong, $0, rsv1: false) } }
        case .pong:
            break
        case .close(let code, _):
            handle(.closeFrame(code))
        }
    }

    /// Sends a data message, compressed when permessage-deflate is on and it is worth it.
    func send(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) {
        guard takesFrames else { return }
        if let deflater, payload.count >= limits.compressionThreshold {
            let compressed = deflater.deflate(payload)
            compressed.withUnsafeBytes { enqueueOwnFrame(opcode, $0, rsv1: true) }
        } else {
            enqueueOwnFrame(opcode, payload, rsv1: false)
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
        guard takesFrames else { return false }
        enqueue(frame)
        checkBackpressure()
        return true
    }

    /// Starts the closing handshake (server side). The connection ends when the peer answers,
    /// or after the close-handshake time if it does not.
    func close(_ code: CloseCode, reason: String = "") { handle(.close(code, reason: reason)) }

    /// Closes with `code` without waiting for the peer's close frame (a broken rule).
    func fail(code: CloseCode, reason: String) { handle(.fail(code, reason: reason)) }

    /// A slow consumer is cut off: over the byte cap; or, while its socket refuses output,
    /// over the frame cap, or over `maxStalledFrames` pushes behind (queued or held) with the
    /// socket refusing for `stalledMs`. The frame limits judge the reader, not the loop: a busy
    /// turn (hundreds of publications from the mailbox in a debug build) queues frames before
    /// the loop writes, and a reader's report of room (EPOLLOUT) can wait in the same epoll
    /// batch behind that work. So they apply only after a write was refused, the refusal is
    /// timed from that write, and the socket is asked whether it still refuses before the verdict.
    private func checkBackpressure() {
        guard takesFrames else { return }
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
        handle(.overCap)
    }

    /// Cuts off a slow consumer: drops what it has not started to receive and tells it to
    /// recover with `since` (4009); over TLS it ends without a close frame.
    func cutOff() { handle(.cutDue) }

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

    /// A frame for this connection alone (a reply, an echo): written into the queue's own run
    /// rather than an allocation of its own; through TLS, encrypted straight away.
    private func enqueueOwnFrame(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer, rsv1: Bool) {
        guard phase != .closed else { return }
        guard tls == nil else { return enqueue(Bytes.frame(opcode, payload, rsv1: rsv1)) }
        output.appendOwnFrame(opcode, payload, rsv1: rsv1)
        scheduleFlush()
    }

    private func scheduleFlush() {
        guard phase != .closed else { return }
        writes.schedule(self)
    }

    /// Writes what the socket takes; called by the loop's `WriteScheduler` after each batch
    /// and on EPOLLOUT.
    func flush() {
        guard phase != .closed else { return }
        switch output.flush(fd: fd, budget: limits.bytesPerFlush, gather: loop.gatherBuffer) {
        case .drained:
            refusedAt = 0
            if flushMark.polling { loop.setWriteInterest(self, false) }
            if drainWaiter {
                drainWaiter = false
                handler?.didDrain(self)
            }
            handle(.drained)
        case .partial:
            if refusedAt == 0 { refusedAt = monotonicMillis() }
            if !flushMark.polling { loop.setWriteInterest(self, true) }
        case .failed:
            terminate()
        }
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
    func terminate() { handle(.terminate) }

    // MARK: timers

    /// Called by the loop's sweep about once a second.
    func sweep(now: Int64) {
        if isOpenWebSocket { handler?.tick(self, now: now) }
        releaseIdleBuffers()
        handle(.sweep(keepAliveIdle: http?.parser.isIdle == true && http?.requestsServed ?? 0 > 0), now: now)
    }

    /// What an idle connection does not need goes back to the allocator: the output list's
    /// array once nothing was queued for a sweep interval, the frame reader's spare buffers
    /// between frames. Each is released once per idle spell (a released one has no capacity).
    private func releaseIdleBuffers() {
        output.releaseIfIdle()
        reader?.releaseSpareCapacity()
    }

    /// Bytes of buffer capacity the connection holds for output and input (for tests of idle
    /// memory): the output list's slots and the frame reader's buffers.
    var bufferCapacity: (outputSlots: Int, readerBytes: Int) {
        (output.listCapacity, reader?.bufferCapacity ?? 0)
    }

    /// Server shutdown: WebSockets get 1001, idle HTTP connections close, busy ones close
    /// after their response.
    func beginShutdown() { handle(.shutdown(parserIdle: http?.parser.isIdle == true)) }

    // MARK: lifecycle

    /// Moves the lifecycle on and carries out its steps, in this order.
    private func handle(_ event: LifecycleEvent, now: Int64? = nil) {
        let actions = lifecycle.handle(event, now: now ?? loop.now, limits: limits)
        phase = lifecycle.phase
        takesFrames = lifecycle.takesFrames
        isOpenWebSocket = lifecycle.isOpenWebSocket
        let steps = actions.steps
        guard !steps.isEmpty else { return }
        if steps.contains(.reportSlowConsumer) {
            Log.info("slow_consumer", ["conn": "\(id)", "peer": peer.description, "buffered": "\(output.bytes)", "frames": "\(output.frames)",
                                       "held": "\(heldPushes)", "refused_ms": refusedAt > 0 ? "\(loop.now - refusedAt)" : "0"])
            loop.shared.slowConsumerCloses.add(1, ordering: .relaxed)
        }
        if steps.contains(.dropUnstarted) { output.dropUnstarted() }
        if steps.contains(.stopReading) { reader = nil }
        if steps.contains(.enqueueClose) { enqueue(Bytes.copy(FrameEncoder.closeFrame(code: actions.code, reason: actions.reason))) }
        if steps.contains(.notifyClosed) {
            loop.webSocketClosed()
            handler?.didClose(self, code: actions.code)
        }
        if steps.contains(.scheduleFlush) { scheduleFlush() }
        if steps.contains(.sendPing) { enqueue(Bytes.frame(.ping, [])) }
        if steps.contains(.respond408) {
            Log.debug("request_timeout", ["conn": "\(id)", "peer": peer.description])
            respond(.error(HTTPStatus(408, "Request Timeout"), "request not received in time", code: .badRequest, closeConnection: true))
        }
        if steps.contains(.scheduleCut) { loop.closes.scheduleCut(self) }
        if steps.contains(.scheduleExpiry) { loop.closes.scheduleExpiry(self) } // closed within a few turns
        if steps.contains(.shutdownWrite) { startLinger() }
        if steps.contains(.terminate) {
            reader = nil
            http = nil
            output.removeAll()
            loop.retire(self)
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
        shutdown(fd, Int32(SHUT_WR))
    }
}

/// A connection's HTTP request parser, by reference (see `Connection.http`), and how many
/// requests it has served (what the keep-alive sweep asks).
private final class HTTPParserBox {
    var parser: HTTPRequestParser
    var requestsServed = 0
    init(_ parser: HTTPRequestParser) { self.parser = parser }
}
