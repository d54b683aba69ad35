import XCTest
import Protocol
@testable import Hub

// A connection's life as a pure table: a state, an event, the state after it and the steps the
// connection must take. No sockets, no clock (times are plain numbers).
final class ConnectionLifecycleTests: XCTestCase {
    private let limits = EngineLimits()
    private let t: Int64 = 1_000_000
    private var open: LifecycleState { .webSocket(PingClock(lastReceived: t), cutPending: false) }
    private var cutPending: LifecycleState { .webSocket(PingClock(lastReceived: t), cutPending: true) }

    private typealias Steps = LifecycleActions.Steps

    /// Runs `event` on a lifecycle in `state` and checks what follows.
    private func expect(_ state: LifecycleState, tls: Bool = false, _ event: LifecycleEvent, at now: Int64? = nil,
                        becomes expected: LifecycleState, steps: Steps, code: CloseCode? = nil, reason: String = "",
                        _ why: String, line: UInt = #line) {
        var lifecycle = ConnectionLifecycle(tls: tls, state: state)
        let actions = lifecycle.handle(event, now: now ?? t, limits: limits)
        XCTAssertEqual(lifecycle.state, expected, "state after \(event) in \(state): \(why)", line: line)
        XCTAssertEqual(actions.steps, steps, "steps for \(event) in \(state): \(why)", line: line)
        if steps.contains(.enqueueClose) || steps.contains(.notifyClosed) {
            XCTAssertEqual(actions.code, code, "close code: \(why)", line: line)
            XCTAssertEqual(actions.reason, reason, "close reason: \(why)", line: line)
        }
    }

    func testACloseWhileACutIsPendingDropsTheBacklogExceptOverTLS() {
        let handshake = LifecycleState.closing(.handshake, over: .webSocket, deadline: t + limits.closeHandshakeMs, expiryScheduled: false)
        expect(cutPending, .close(.policyViolation, reason: "rate limit exceeded"), becomes: handshake,
               steps: [.dropUnstarted, .enqueueClose, .notifyClosed, .scheduleFlush], code: .policyViolation, reason: "rate limit exceeded",
               "the backlog would never be read: the close frame goes right after what is on its way")
        expect(cutPending, tls: true, .close(.policyViolation, reason: "x"), becomes: handshake,
               steps: [.enqueueClose, .notifyClosed, .scheduleFlush], code: .policyViolation, reason: "x",
               "queued TLS records cannot be dropped")
        expect(open, .close(.policyViolation, reason: "x"), becomes: handshake,
               steps: [.enqueueClose, .notifyClosed, .scheduleFlush], code: .policyViolation, reason: "x",
               "no cut pending: nothing dropped")
        let failed = LifecycleState.closing(.flushThenFIN, over: .webSocket, deadline: t + limits.lingerMs, expiryScheduled: false)
        expect(cutPending, .fail(.slowConsumer, reason: "too far behind"), becomes: failed,
               steps: [.dropUnstarted, .stopReading, .enqueueClose, .notifyClosed, .scheduleFlush], code: .slowConsumer, reason: "too far behind",
               "a failure while a cut is pending drops the backlog too")
    }

    func testACutAfterACloseKeepsTheCloseFrame() {
        let handshake = LifecycleState.closing(.handshake, over: .webSocket, deadline: t + 4_000, expiryScheduled: false)
        expect(handshake, .cutDue, becomes: handshake, steps: [], "closing already: its close frame must not be dropped")
        expect(.closed, .cutDue, becomes: .closed, steps: [], "closed meanwhile: nothing")
    }

    func testACutDropsTheBacklogAndCloses4009() {
        expect(cutPending, .cutDue,
               becomes: .closing(.flushThenFIN, over: .webSocket, deadline: t + limits.lingerMs, expiryScheduled: false),
               steps: [.reportSlowConsumer, .dropUnstarted, .stopReading, .enqueueClose, .notifyClosed, .scheduleFlush],
               code: .slowConsumer, reason: "slow consumer", "4009 right after what is on its way")
    }

    func testACutOverTLSNotifiesAndTerminates() {
        expect(cutPending, tls: true, .cutDue, becomes: .closed, steps: [.reportSlowConsumer, .notifyClosed, .terminate],
               code: .slowConsumer, "no close frame can follow records that cannot be dropped")
    }

    func testOverTheCapSchedulesOneCut() {
        expect(open, .overCap, becomes: cutPending, steps: [.scheduleCut], "a slow consumer waits for its cut")
        expect(cutPending, .overCap, becomes: cutPending, steps: [], "already waiting: not listed again")
    }

    func testThePeersCloseIsEchoedThenTheConnectionLingers() {
        let flushing = LifecycleState.closing(.flushThenFIN, over: .webSocket, deadline: t + limits.lingerMs, expiryScheduled: false)
        expect(open, .closeFrame(.normal), becomes: flushing, steps: [.stopReading, .enqueueClose, .notifyClosed, .scheduleFlush],
               code: .normal, "the peer's code is echoed and the handler told it")
        expect(flushing, .drained, at: t + 5, becomes: .lingering(over: .webSocket, deadline: t + 5 + limits.lingerMs, expiryScheduled: false),
               steps: [.shutdownWrite], "written: FIN, then wait for the peer's")
        let handshake = LifecycleState.closing(.handshake, over: .webSocket, deadline: t + 4_000, expiryScheduled: false)
        expect(handshake, .closeFrame(.normal), becomes: .closing(.flushThenFIN, over: .webSocket, deadline: t + 4_000, expiryScheduled: false),
               steps: [.stopReading, .scheduleFlush], "the peer answered our close: no second close frame, no second notice")
        expect(handshake, .drained, becomes: handshake, steps: [], "our close is written: still waiting for the peer's")
    }

    func testRequestTimeoutIs408ButAnIdleKeepAliveJustCloses() {
        let reading = LifecycleState.http(.reading(head: true), deadline: t)
        expect(reading, .sweep(keepAliveIdle: false), becomes: .http(.responding(head: false, keepAlive: false), deadline: t),
               steps: [.respond408], "a request not received in time")
        expect(reading, .sweep(keepAliveIdle: true), becomes: .closed, steps: [.terminate], "idle keep-alive")
        expect(reading, .sweep(keepAliveIdle: false), at: t - 1, becomes: reading, steps: [], "before the deadline: nothing")
        expect(.http(.responding(head: false, keepAlive: true), deadline: t), .sweep(keepAliveIdle: false), at: t + 60_000,
               becomes: .http(.responding(head: false, keepAlive: true), deadline: t), steps: [], "an answer is awaited: no timeout")
    }

    func testAResponseKeepsTheConnectionOrClosesAfterIt() {
        let responding = LifecycleState.http(.responding(head: true, keepAlive: true), deadline: t)
        expect(responding, .responded(closeConnection: false), becomes: .http(.reading(head: true), deadline: t + limits.keepAliveIdleMs),
               steps: [], "keep-alive: idle time from now")
        expect(responding, .responded(closeConnection: true), becomes: .closing(.flushThenFIN, over: .http, deadline: t, expiryScheduled: false),
               steps: [.scheduleFlush], "Connection: close: FIN after the response")
    }

    func testAPingThenA1001WhenNoPongComes() {
        let pinged = LifecycleState.webSocket(PingClock(lastReceived: t, pingSentAt: t + limits.pingIntervalMs), cutPending: false)
        expect(open, .sweep(keepAliveIdle: false), at: t + limits.pingIntervalMs - 1, becomes: open, steps: [], "not silent long enough")
        expect(open, .sweep(keepAliveIdle: false), at: t + limits.pingIntervalMs, becomes: pinged, steps: [.sendPing], "silent: pinged")
        let timedOut = t + limits.pingIntervalMs + limits.pongTimeoutMs
        expect(pinged, .sweep(keepAliveIdle: false), at: timedOut,
               becomes: .closing(.flushThenFIN, over: .webSocket, deadline: timedOut + limits.lingerMs, expiryScheduled: false),
               steps: [.stopReading, .enqueueClose, .notifyClosed, .scheduleFlush], code: .goingAway, reason: "ping timeout", "no answer")
        expect(pinged, .frameBytes, at: t + limits.pingIntervalMs + 5,
               becomes: .webSocket(PingClock(lastReceived: t + limits.pingIntervalMs + 5), cutPending: false), steps: [],
               "anything received answers the ping")
    }

    func testAnExpiredDeadlineIsScheduledOnce() {
        for over in [Wire.http, .webSocket] {
            let closing = LifecycleState.closing(.flushThenFIN, over: over, deadline: t, expiryScheduled: false)
            let listed = LifecycleState.closing(.flushThenFIN, over: over, deadline: t, expiryScheduled: true)
            expect(closing, .sweep(keepAliveIdle: false), becomes: listed, steps: [.scheduleExpiry], "past the deadline")
            expect(listed, .sweep(keepAliveIdle: false), at: t + 1_000, becomes: listed, steps: [], "listed already")
            let lingering = LifecycleState.lingering(over: over, deadline: t, expiryScheduled: false)
            let lingeringListed = LifecycleState.lingering(over: over, deadline: t, expiryScheduled: true)
            expect(lingering, .sweep(keepAliveIdle: false), at: t - 1, becomes: lingering, steps: [], "before the deadline")
            expect(lingering, .sweep(keepAliveIdle: false), becomes: lingeringListed, steps: [.scheduleExpiry], "past the deadline")
            expect(lingeringListed, .sweep(keepAliveIdle: false), at: t + 1_000, becomes: lingeringListed, steps: [], "listed already")
        }
    }

    func testShutdownFromEveryState() {
        let goingAway = LifecycleState.closing(.flushThenFIN, over: .webSocket, deadline: t + limits.lingerMs, expiryScheduled: false)
        expect(open, .shutdown(parserIdle: true), becomes: goingAway, steps: [.stopReading, .enqueueClose, .notifyClosed, .scheduleFlush],
               code: .goingAway, reason: "server shutting down", "1001, then FIN without waiting for the reply")
        expect(cutPending, .shutdown(parserIdle: true), becomes: goingAway,
               steps: [.dropUnstarted, .stopReading, .enqueueClose, .notifyClosed, .scheduleFlush],
               code: .goingAway, reason: "server shutting down", "a pending cut's backlog is dropped")
        let handshake = LifecycleState.closing(.handshake, over: .webSocket, deadline: t, expiryScheduled: false)
        expect(handshake, .shutdown(parserIdle: true), becomes: handshake, steps: [], "closing already")
        let wsLingering = LifecycleState.lingering(over: .webSocket, deadline: t, expiryScheduled: false)
        expect(wsLingering, .shutdown(parserIdle: true), becomes: wsLingering, steps: [], "lingering already")
        expect(.http(.reading(head: false), deadline: t), .shutdown(parserIdle: true), becomes: .closed, steps: [.terminate], "idle HTTP closes")
        expect(.http(.reading(head: false), deadline: t), .shutdown(parserIdle: false),
               becomes: .closing(.flushThenFIN, over: .http, deadline: t, expiryScheduled: false), steps: [.scheduleFlush],
               "a request half received: FIN after what is queued")
        expect(.http(.responding(head: true, keepAlive: true), deadline: t), .shutdown(parserIdle: true),
               becomes: .http(.responding(head: true, keepAlive: false), deadline: t), steps: [], "busy: closes after its response")
        let httpClosing = LifecycleState.closing(.flushThenFIN, over: .http, deadline: t, expiryScheduled: false)
        expect(httpClosing, .shutdown(parserIdle: true), becomes: .closed, steps: [.terminate], "an idle parser ends now")
        expect(httpClosing, .shutdown(parserIdle: false), becomes: httpClosing, steps: [.scheduleFlush], "what is queued first")
        expect(.closed, .shutdown(parserIdle: true), becomes: .closed, steps: [], "closed")
    }

    func testEOFNotifies1006ExactlyOnce() {
        var lifecycle = ConnectionLifecycle(tls: false, state: open)
        let first = lifecycle.handle(.peerEOF, now: t, limits: limits)
        XCTAssertEqual(first.steps, [.notifyClosed, .terminate], "an open WebSocket is told it closed")
        XCTAssertNil(first.code, "no close frame: 1006")
        XCTAssertEqual(lifecycle.handle(.terminate, now: t, limits: limits).steps, [], "closed: told once")
        XCTAssertEqual(lifecycle.handle(.peerEOF, now: t, limits: limits).steps, [], "closed: told once")
        let closing = LifecycleState.closing(.handshake, over: .webSocket, deadline: t, expiryScheduled: false)
        expect(closing, .peerEOF, becomes: .closed, steps: [.terminate], "told already when our close frame was queued")
        expect(.http(.reading(head: false), deadline: t), .peerEOF, becomes: .closed, steps: [.terminate], "HTTP: no WebSocket to tell")
    }

    func testAnUpgradeOpensTheWebSocket() {
        var lifecycle = ConnectionLifecycle(tls: false, now: t, limits: limits)
        XCTAssertEqual(lifecycle.state, .http(.reading(head: false), deadline: t + limits.requestTimeoutMs))
        _ = lifecycle.handle(.requestParsed(head: false, keepAlive: true), now: t + 1, limits: limits)
        XCTAssertEqual(lifecycle.handle(.upgraded, now: t + 2, limits: limits).steps, [])
        XCTAssertEqual(lifecycle.state, .webSocket(PingClock(lastReceived: t + 2), cutPending: false))
        XCTAssertTrue(lifecycle.takesFrames)
    }
}
