import Protocol

// Where one connection is in its life, as one value: the state, each carrying the deadline
// the sweep checks, and `handle(_:now:limits:)`, which answers each event with the steps the
// connection must take. Pure: no socket, clock or handler here; `Connection` carries the
// steps out, in the order `LifecycleActions.Steps` lists them, after the state has moved.

/// What a connection speaks, whether open or closing; what the loop and the input path ask.
enum ConnectionPhase { case http, webSocket, closed }

/// What a closing or lingering connection spoke before it began to close.
enum Wire: Equatable { case http, webSocket }

enum HTTPStage: Equatable {
    /// Reading the next request. `head`: the last request was HEAD; an answer given before the
    /// next request is parsed whole (a malformed one) goes out as for it, without a body.
    case reading(head: Bool)
    /// A request is being answered (a service answering `.later` does so when it can).
    case responding(head: Bool, keepAlive: Bool)
}

enum ClosingStage: Equatable {
    /// Our close frame is queued; the peer's is awaited (its frames are still read for it).
    case handshake
    /// The last bytes are queued; once they are written: FIN, then `lingering`.
    case flushThenFIN
}

/// When a WebSocket last sent anything, and when it was pinged for its silence (0: not).
struct PingClock: Equatable {
    var lastReceived: Int64
    var pingSentAt: Int64 = 0
}

enum LifecycleState: Equatable {
    case http(HTTPStage, deadline: Int64)
    /// Open. `cutPending`: over its output cap, waiting for its cut (4009); takes no frames.
    case webSocket(PingClock, cutPending: Bool)
    /// `expiryScheduled`: past the deadline and in the loop's list of expiries (listed once).
    case closing(ClosingStage, over: Wire, deadline: Int64, expiryScheduled: Bool)
    /// Our FIN is sent; the peer's is awaited, and what it sends is discarded.
    case lingering(over: Wire, deadline: Int64, expiryScheduled: Bool)
    case closed
}

enum LifecycleEvent: Equatable {
    /// HTTP bytes arrived; `parserIdle`: no part of a request was buffered before them.
    case requestBytes(parserIdle: Bool)
    /// Bytes arrived for the WebSocket frame reader.
    case frameBytes
    case requestParsed(head: Bool, keepAlive: Bool)
    case responded(closeConnection: Bool)
    case upgraded
    /// The peer's close frame, with its code (nil: none given).
    case closeFrame(CloseCode?)
    /// A server-initiated close: the closing handshake on a WebSocket, FIN after the output
    /// on HTTP.
    case close(CloseCode, reason: String)
    /// A broken rule: the close frame, then FIN without waiting for the peer's close frame.
    case fail(CloseCode, reason: String)
    /// The output passed a cap (`Connection.checkBackpressure`).
    case overCap
    /// The loop's turn to cut this slow consumer came.
    case cutDue
    /// Everything queued is written.
    case drained
    /// The loop's sweep. `keepAliveIdle`: an HTTP connection served a request and holds no
    /// part of the next.
    case sweep(keepAliveIdle: Bool)
    case shutdown(parserIdle: Bool)
    case peerEOF
    /// Ends now (a socket or TLS error, the linger time ran out, the shutdown deadline).
    case terminate
}

/// What a connection does for one event. A fixed-size value: no allocation per event.
struct LifecycleActions: Equatable {
    struct Steps: OptionSet, Equatable {
        let rawValue: UInt16
        static let reportSlowConsumer = Steps(rawValue: 1 << 0)
        /// Drop the output the socket has not started on.
        static let dropUnstarted = Steps(rawValue: 1 << 1)
        /// Discard the frame reader: what arrives from now on is not read.
        static let stopReading = Steps(rawValue: 1 << 2)
        /// Queue a close frame with `code` and `reason`.
        static let enqueueClose = Steps(rawValue: 1 << 3)
        /// Tell the handler the WebSocket closed with `code` (nil: 1006, no close frame).
        static let notifyClosed = Steps(rawValue: 1 << 4)
        static let scheduleFlush = Steps(rawValue: 1 << 5)
        static let sendPing = Steps(rawValue: 1 << 6)
        static let respond408 = Steps(rawValue: 1 << 7)
        static let scheduleCut = Steps(rawValue: 1 << 8)
        static let scheduleExpiry = Steps(rawValue: 1 << 9)
        /// Send FIN (after a TLS close_notify): the lingering close begins.
        static let shutdownWrite = Steps(rawValue: 1 << 10)
        /// Release the reader, parser and output; the loop closes the fd after the batch.
        static let terminate = Steps(rawValue: 1 << 11)
    }

    var steps: Steps
    var code: CloseCode?
    var reason: String

    init(_ steps: Steps = [], code: CloseCode? = nil, reason: String = "") {
        self.steps = steps
        self.code = code
        self.reason = reason
    }

    static let none = LifecycleActions()
}

struct ConnectionLifecycle {
    private(set) var state: LifecycleState
    /// Queued TLS records cannot be dropped without breaking the stream.
    let tls: Bool

    init(tls: Bool, now: Int64, limits: EngineLimits) {
        self.tls = tls
        state = .http(.reading(head: false), deadline: now + limits.requestTimeoutMs)
    }

    /// For tests: a lifecycle already in `state`.
    init(tls: Bool, state: LifecycleState) {
        self.tls = tls
        self.state = state
    }

    var phase: ConnectionPhase {
        switch state {
        case .http, .closing(_, .http, _, _), .lingering(.http, _, _): .http
        case .webSocket, .closing(_, .webSocket, _, _), .lingering(.webSocket, _, _): .webSocket
        case .closed: .closed
        }
    }

    var isClosed: Bool { if case .closed = state { true } else { false } }

    /// An open WebSocket not waiting for its cut: it takes frames to send.
    var takesFrames: Bool { if case .webSocket(_, cutPending: false) = state { true } else { false } }

    /// An open WebSocket (cut pending or not): messages and pings from the peer are answered.
    var isOpenWebSocket: Bool { if case .webSocket = state { true } else { false } }

    /// Reading requests, none being answered.
    var readsRequests: Bool { if case .http(.reading, _) = state { true } else { false } }

    /// How an HTTP answer goes out now: without a body after HEAD, and whether the connection
    /// stays open after it; nil when no HTTP answer can go out.
    var responseShape: (head: Bool, keepAlive: Bool)? {
        switch state {
        case .http(.reading(let head), _): (head, true)
        case .http(.responding(let head, let keepAlive), _): (head, keepAlive)
        default: nil
        }
    }

    /// Where input from the socket goes.
    enum Input { case requests, frames, discarded }
    var input: Input {
        switch state {
        case .http, .closing(_, .http, _, _): .requests
        case .webSocket, .closing(_, .webSocket, _, _): .frames
        case .lingering, .closed: .discarded
        }
    }

    mutating func handle(_ event: LifecycleEvent, now: Int64, limits: EngineLimits) -> LifecycleActions {
        switch event {
        case .requestBytes(let parserIdle):
            // A request starts: it has the request time from now (a closing connection too).
            guard parserIdle else { return .none }
            let deadline = now + limits.requestTimeoutMs
            switch state {
            case .http(let stage, _): state = .http(stage, deadline: deadline)
            case .closing(let stage, .http, _, let listed): state = .closing(stage, over: .http, deadline: deadline, expiryScheduled: listed)
            default: break
            }
            return .none

        case .frameBytes:
            if case .webSocket(_, let cutPending) = state { state = .webSocket(PingClock(lastReceived: now), cutPending: cutPending) }
            return .none

        case .requestParsed(let head, let keepAlive):
            if case .http(_, let deadline) = state { state = .http(.responding(head: head, keepAlive: keepAlive), deadline: deadline) }
            return .none

        case .responded(let closeConnection):
            guard case .http(let stage, let deadline) = state else { return .none }
            if closeConnection {
                state = .closing(.flushThenFIN, over: .http, deadline: deadline, expiryScheduled: false)
                return LifecycleActions(.scheduleFlush)
            }
            let head = switch stage { case .reading(let h), .responding(let h, _): h }
            state = .http(.reading(head: head), deadline: now + limits.keepAliveIdleMs)
            return .none

        case .upgraded:
            guard case .http = state else { return .none }
            state = .webSocket(PingClock(lastReceived: now), cutPending: false)
            return .none

        case .closeFrame(let code):
            switch state {
            case .webSocket:
                // Echo the peer's code (RFC 6455 §5.5.1), then close the TCP connection.
                state = .closing(.flushThenFIN, over: .webSocket, deadline: now + limits.lingerMs, expiryScheduled: false)
                return LifecycleActions([.stopReading, .enqueueClose, .notifyClosed, .scheduleFlush], code: code)
            case .closing(_, .webSocket, let deadline, let listed):
                // The peer answered our close: the handshake is complete.
                state = .closing(.flushThenFIN, over: .webSocket, deadline: deadline, expiryScheduled: listed)
                return LifecycleActions([.stopReading, .scheduleFlush])
            default:
                return .none
            }

        case .close(let code, let reason):
            switch state {
            case .webSocket(_, let cutPending):
                state = .closing(.handshake, over: .webSocket, deadline: now + limits.closeHandshakeMs, expiryScheduled: false)
                return LifecycleActions(dropBacklog(cutPending).union([.enqueueClose, .notifyClosed, .scheduleFlush]), code: code, reason: reason)
            case .http(_, let deadline):
                state = .closing(.flushThenFIN, over: .http, deadline: deadline, expiryScheduled: false)
                return LifecycleActions(.scheduleFlush)
            case .closing(_, .http, _, _), .lingering(.http, _, _):
                return LifecycleActions(.scheduleFlush)
            default:
                return .none
            }

        case .fail(let code, let reason):
            return fail(code, reason: reason, now: now, limits: limits)

        case .overCap:
            guard case .webSocket(let clock, cutPending: false) = state else { return .none }
            state = .webSocket(clock, cutPending: true)
            return LifecycleActions(.scheduleCut)

        case .cutDue:
            // Closed or closing meanwhile: nothing (its close frame must not be dropped).
            guard case .webSocket = state else { return .none }
            if tls {
                state = .closed
                return LifecycleActions([.reportSlowConsumer, .notifyClosed, .terminate], code: .slowConsumer)
            }
            state = .closing(.flushThenFIN, over: .webSocket, deadline: now + limits.lingerMs, expiryScheduled: false)
            return LifecycleActions([.reportSlowConsumer, .dropUnstarted, .stopReading, .enqueueClose, .notifyClosed, .scheduleFlush],
                                    code: .slowConsumer, reason: "slow consumer")

        case .drained:
            guard case .closing(.flushThenFIN, let over, _, let listed) = state else { return .none }
            state = .lingering(over: over, deadline: now + limits.lingerMs, expiryScheduled: listed)
            return LifecycleActions(.shutdownWrite)

        case .sweep(let keepAliveIdle):
            return sweep(keepAliveIdle: keepAliveIdle, now: now, limits: limits)

        case .shutdown(let parserIdle):
            switch state {
            case .webSocket:
                // 1001, flushed, then FIN: the hub does not wait for each client's close reply.
                return fail(.goingAway, reason: "server shutting down", now: now, limits: limits)
            case .http(.responding(let head, _), let deadline):
                state = .http(.responding(head: head, keepAlive: false), deadline: deadline)
                return .none
            case .http(.reading, let deadline):
                if parserIdle { return terminate() }
                state = .closing(.flushThenFIN, over: .http, deadline: deadline, expiryScheduled: false)
                return LifecycleActions(.scheduleFlush)
            case .closing(_, .http, _, _), .lingering(.http, _, _):
                return parserIdle ? terminate() : LifecycleActions(.scheduleFlush)
            default:
                return .none
            }

        case .peerEOF, .terminate:
            return terminate()
        }
    }

    private func dropBacklog(_ cutPending: Bool) -> LifecycleActions.Steps {
        // A connection waiting to be cut off that closes for another reason first: its backlog
        // would never be read, so the close frame goes right after what is already on its way.
        cutPending && !tls ? .dropUnstarted : []
    }

    private mutating func fail(_ code: CloseCode, reason: String, now: Int64, limits: EngineLimits) -> LifecycleActions {
        switch state {
        case .webSocket(_, let cutPending):
            state = .closing(.flushThenFIN, over: .webSocket, deadline: now + limits.lingerMs, expiryScheduled: false)
            return LifecycleActions(dropBacklog(cutPending).union([.stopReading, .enqueueClose, .notifyClosed, .scheduleFlush]),
                                    code: code, reason: reason)
        case .closing(_, .webSocket, _, let listed):
            state = .closing(.flushThenFIN, over: .webSocket, deadline: now + limits.lingerMs, expiryScheduled: listed)
            return LifecycleActions([.stopReading, .scheduleFlush])
        case .lingering(.webSocket, _, let listed):
            state = .lingering(over: .webSocket, deadline: now + limits.lingerMs, expiryScheduled: listed)
            return LifecycleActions([.stopReading, .scheduleFlush])
        default:
            return .none
        }
    }

    private mutating func sweep(keepAliveIdle: Bool, now: Int64, limits: EngineLimits) -> LifecycleActions {
        switch state {
        case .closing(let stage, let over, let deadline, expiryScheduled: false) where now >= deadline:
            state = .closing(stage, over: over, deadline: deadline, expiryScheduled: true)
            return LifecycleActions(.scheduleExpiry)
        case .lingering(let over, let deadline, expiryScheduled: false) where now >= deadline:
            state = .lingering(over: over, deadline: deadline, expiryScheduled: true)
            return LifecycleActions(.scheduleExpiry)
        case .http(.reading, let deadline) where now >= deadline:
            if keepAliveIdle { return terminate() }
            state = .http(.responding(head: false, keepAlive: false), deadline: deadline)
            return LifecycleActions(.respond408)
        case .webSocket(var clock, let cutPending):
            if clock.pingSentAt > 0 {
                if now - clock.pingSentAt >= limits.pongTimeoutMs { return fail(.goingAway, reason: "ping timeout", now: now, limits: limits) }
            } else if now - clock.lastReceived >= limits.pingIntervalMs {
                clock.pingSentAt = now
                state = .webSocket(clock, cutPending: cutPending)
                return LifecycleActions(.sendPing)
            }
            return .none
        default:
            return .none
        }
    }

    private mutating func terminate() -> LifecycleActions {
        switch state {
        case .closed:
            return .none
        case .webSocket:
            state = .closed
            return LifecycleActions([.notifyClosed, .terminate]) // 1006: no close frame
        default:
            state = .closed
            return LifecycleActions(.terminate)
        }
    }
}
