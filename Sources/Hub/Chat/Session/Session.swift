import Metrics
import Core
import Persistence
import Protocol

// One authenticated (or authenticating) WebSocket on /ws: decodes ops, checks authorization
// for every one, talks to the store off-loop, and keeps per-channel delivery state so every
// subscriber sees a conversation's messages in seq order with no gap and no duplicate.
// Lives on its connection's loop; store completions hop back through the loop's mailbox and
// find the session again by connection id (a closed connection simply drops them).
final class Session: WebSocketHandler {
    // One per connection, for the connection's whole life: the stored properties are in an
    // order that leaves no padding a smaller one could fill (the 4- and 1-byte ones sit in
    // the gaps after `connectionID`, `user` and `opAllowance`).
    let chat: ChatService
    /// The `?token=` of the upgrade request, until `didOpen` hands it to `authenticate`: a JWT
    /// is a few hundred bytes that an idle connection must not keep.
    private(set) var urlToken: String?
    var loop: EventLoop?
    var connectionID: ConnectionID?
    /// The op being decoded (its latency is recorded when it is answered); when it arrived is
    /// `currentStarted`.
    var currentOp: Op?
    /// This session's places in the loop registry's lists of its two broadcast channels, in
    /// the order of `broadcastChannels` (-1: not listed); kept by `SubscriberList`.
    var broadcastSlot0: Int32 = -1
    var user: SessionUser?
    /// Op-rate refusals in a row.
    var rateStrikes: Int32 = 0
    var authDeadline: Int64 = 0
    var subscriptions = SubscriptionTable()

    /// Store operations this connection has in flight (answered or not yet).
    var inFlight = 0
    /// The internal broadcast channels joined at auth ('all' and the user's role): one array
    /// per role shared by every session of the process (`Channel.audienceChannels`).
    var broadcastChannels: [String] = []
    /// The op rate limit, refilled at `opsPerSecond` (nil when the limit is off).
    var opAllowance: RateAllowance?
    var broadcastSlot1: Int32 = -1
    /// Subscriptions whose catch-up waits for the output queue to drain.
    var drainedCatchUps: Set<String> = []
    /// Live pushes held in all subscriptions while their catch-ups are fetched. The sum, not
    /// the largest: the stuck rule counts them with the queue (`Connection.setHeldPushes`).
    var heldPushes = 0
    /// When the op being decoded arrived (`currentOp`).
    var currentStarted: Int64 = 0

    init(chat: ChatService, urlToken: String?) {
        self.chat = chat
        self.urlToken = urlToken
    }

    // MARK: WebSocketHandler

    func didOpen(_ c: Connection) {
        loop = c.loop
        connectionID = c.id
        authDeadline = c.loop.now + chat.limits.authDeadlineMs
        if chat.limits.opsPerSecond > 0 {
            opAllowance = RateAllowance(perSecond: chat.limits.opsPerSecond, burst: chat.limits.opsBurst)
        }
        // Counted in `unauthenticated` while `user` is nil, in `online` once it is set.
        chat.unauthenticated.add(1, ordering: .relaxed)
        if let token = urlToken {
            urlToken = nil
            authenticate(c, token: token, requestID: nil)
        }
    }

    func didClose(_ c: Connection, code: CloseCode?) {
        for name in subscriptions.keys { drop(name, loop: c.loop.index) }
        for name in broadcastChannels { chat.router.unsubscribe(self, from: name, loop: c.loop.index, subscription: nil) }
        broadcastChannels = []
        if let user {
            chat.online.disconnected(user)
            chat.seen.record(UserSeen(user: user.id, at: wallMillis()))
        } else {
            chat.unauthenticated.subtract(1, ordering: .relaxed)
        }
    }

    func tick(_ c: Connection, now: Int64) {
        if user == nil && now >= authDeadline {
            Log.info("auth_timeout", ["conn": "\(c.id)", "peer": c.peer.description])
            c.close(.authTimeout, reason: "no auth within the deadline")
        }
    }

    func didReceive(_ c: Connection, opcode: Opcode, payload: UnsafeRawBufferPointer) {
        // Every frame takes a token before any work is spent on it (parsing included).
        if opAllowance?.take(now: c.loop.now) == false { return refuseOverRate(c, payload) }
        rateStrikes = 0
        let request: OpRequest
        switch OpDecoder.decode(opcode: opcode, payload: payload, maxEnvelopeBytes: ContractLimits.maxEnvelopeBytes,
                                authenticated: user != nil) {
        case .success(let r): request = r
        case .failure(let refusal):
            let started = monotonicMicros()
            replyError(c, refusal.id, refusal.code, refusal.message)
            // A known op refused is timed as that op; a store-backed one is timed only when its
            // reply leaves a hop, so one refused here records no latency.
            if let op = refusal.op, !op.isStoreBacked { chat.metrics.recordOp(op, micros: monotonicMicros() - started) }
            return
        }
        let id = request.id, op = request.op, params = request.params
        currentOp = op
        currentStarted = monotonicMicros()
        defer {
            // Store-backed ops are timed when their reply leaves (SessionHop).
            if !op.isStoreBacked { chat.metrics.recordOp(op, micros: monotonicMicros() - currentStarted) }
        }
        switch op {
        case .auth:
            guard let token = params["token"]?.stringValue else { return replyError(c, id, .badRequest, "token must be a string") }
            return authenticate(c, token: token, requestID: id)
        case .ping:
            return reply(c, id) { _ in }
        default:
            break
        }
        guard let user else { return } // the decoder refuses every other op before authentication
        // Each of these ends in a store job: a client may not queue them without bound.
        if op.isStoreBacked && inFlight >= chat.limits.maxInFlight {
            return replyError(c, id, .rateLimited, "more than \(chat.limits.maxInFlight) requests in flight; wait for replies")
        }
        switch op {
        case .auth, .ping: break // answered above, before authentication
        case .subscribe: subscribe(c, id, params, user)
        case .unsubscribe: unsubscribe(c, id, params)
        case .send: send(c, id, params, user)
        case .history: history(c, id, params, user)
        case .read: read(c, id, params, user)
        case .typing: typing(c, id, params, user)
        case .presence: presence(c, id, params, user)
        case .status: status(c, id, params, user)
        case .conversations: conversations(c, id, params, user)
        case .notifications: notifications(c, id, params, user)
        case .notificationsRead: notificationsRead(c, id, params, user)
        case .adminBroadcast: adminBroadcast(c, id, params, user)
        case .adminStats: adminStats(c, id, user)
        case .adminReport: adminReport(c, id, params, user)
        case .conversationStatus: setStatus(c, id, params, user)
        case .claim: claim(c, id, params, user)
        case .assign: assign(c, id, params, user)
        case .edit: edit(c, id, params, user)
        case .delete: delete(c, id, params, user)
        case .edits: edits(c, id, params, user)
        case .search: search(c, id, params, user)
        }
    }

    /// The way back to this session for a store completion, timing the current op.
    func hop(_ c: Connection) -> SessionHop {
        SessionHop(loop: c.loop, id: c.id, op: currentOp, started: currentStarted, metrics: chat.metrics)
    }
}

/// Brings a store completion back to its session: the loop and connection id are Sendable,
/// the session is not, so it is looked up again on its loop (a closed connection drops it).
struct SessionHop: Sendable {
    let loop: EventLoop
    let id: ConnectionID
    var op: Op?
    var started: Int64 = 0
    var metrics: HubMetrics?

    func run(_ body: @escaping @Sendable (Session, Connection) -> Void) {
        loop.execute { loop in
            guard let c = loop.connection(id), let s = c.handler as? Session else { return }
            body(s, c)
            if let op { metrics?.recordOp(op, micros: monotonicMicros() - started) }
        }
    }
}
