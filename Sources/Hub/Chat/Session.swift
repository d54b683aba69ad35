import Bridge
import Core
import Metrics
import Persistence
import Protocol

// One authenticated (or authenticating) WebSocket on /ws: decodes ops, checks authorization
// for every one, talks to the store off-loop, and keeps per-channel delivery state so every
// subscriber sees a conversation's messages in seq order with no gap and no duplicate.
// Lives on its connection's loop; store completions hop back through the loop's mailbox and
// find the session again by connection id (a closed connection simply drops them).
final class Session: WebSocketHandler {
    private let chat: ChatService
    private let urlToken: String?
    private var loop: EventLoop?
    private var connectionID: ConnectionID?
    private(set) var user: SessionUser?
    private var authDeadline: Int64 = 0
    private var subscriptions: [String: Subscription] = [:]

    /// Store operations this connection has in flight (answered or not yet).
    private var inFlight = 0
    /// The internal broadcast channels joined at auth ('all' and the user's role).
    private var broadcastChannels: [String] = []
    /// The op rate limit: a token bucket refilled at `opsPerSecond`, and refusals in a row.
    private var opTokens: Double = 0
    private var opTokensAt: Int64 = 0
    private var rateStrikes = 0
    /// Subscriptions whose catch-up waits for the output queue to drain.
    private var drainedCatchUps: Set<String> = []
    /// Live pushes held in all subscriptions while their catch-ups are fetched. The sum, not
    /// the largest: the stuck rule counts them with the queue (`Connection.setHeldPushes`).
    private var heldPushes = 0
    /// The op being decoded and when it arrived (its latency is recorded when it is answered).
    private var current: (op: Op?, started: Int64) = (nil, 0)

    /// Delivery state of one subscribed channel. A class so that the per-message path
    /// mutates it in place: one dictionary lookup, and `held` is never copied on append.
    final class Subscription {
        let channel: Channel
        /// The next seq this connection must receive (conversations).
        var next: Int64 = 1
        /// False while a fetch from the store is in flight: live pushes wait in `held`.
        var ready: Bool
        var held: [Publication] = []
        /// Counted in the channel's presence (participants of conversations only).
        var joined = false
        init(channel: Channel, ready: Bool = false) {
            self.channel = channel
            self.ready = ready
        }
    }

    init(chat: ChatService, urlToken: String?) {
        self.chat = chat
        self.urlToken = urlToken
    }

    // MARK: WebSocketHandler

    func didOpen(_ c: Connection) {
        loop = c.loop
        connectionID = c.id
        authDeadline = c.loop.now + chat.limits.authDeadlineMs
        opTokens = Double(chat.limits.opsBurst)
        opTokensAt = c.loop.now
        // Counted in `unauthenticated` while `user` is nil, in `online` once it is set.
        chat.unauthenticated.add(1, ordering: .relaxed)
        if let token = urlToken { authenticate(c, token: token, requestID: nil) }
    }

    func didClose(_ c: Connection, code: CloseCode?) {
        for name in Array(subscriptions.keys) { drop(name, loop: c.loop.index) }
        for name in broadcastChannels { chat.router.unsubscribe(self, from: name, loop: c.loop.index) }
        broadcastChannels = []
        if let user {
            chat.online.disconnected(user)
            chat.seen.record(UserSeen(user: user.id, at: wallMillis()))
        } else {
            chat.unauthenticated.subtract(1, ordering: .relaxed)
        }
    }

    /// Ends a subscription: out of the router, and out of presence (a `leave` on the last).
    private func drop(_ name: String, loop: Int) {
        guard let sub = subscriptions.removeValue(forKey: name) else { return }
        chat.router.unsubscribe(self, from: name, loop: loop)
        if !sub.held.isEmpty {
            heldPushes -= sub.held.count
            if let loop = self.loop, let id = connectionID { loop.connection(id)?.setHeldPushes(heldPushes) }
        }
        if sub.joined, let user, chat.presence.leave(name, user.id) {
            chat.broker.publish(.membership("leave", name, user))
        }
    }

    /// The user lost access (an assignment was removed): the subscription ends with `revoked`.
    func revoke(_ name: String) {
        guard subscriptions[name] != nil, let loop, let id = connectionID, let c = loop.connection(id) else { return }
        drop(name, loop: loop.index)
        c.sendFrame(Publication.revoked(name).frame)
        Log.info("revoked", ["conn": "\(c.id)", "user": user?.id ?? "?", "channel": name])
    }

    func tick(_ c: Connection, now: Int64) {
        if user == nil && now >= authDeadline {
            Log.info("auth_timeout", ["conn": "\(c.id)", "peer": c.peer])
            c.close(.authTimeout, reason: "no auth within the deadline")
        }
    }

    func didReceive(_ c: Connection, opcode: Opcode, payload: [UInt8]) {
        // Every frame takes a token before any work is spent on it (parsing included).
        guard takeOpToken(c) else { return refuseOverRate(c, payload) }
        rateStrikes = 0
        guard opcode == .text else {
            return replyError(c, requestID(payload), .badRequest, "ops are JSON text frames")
        }
        guard payload.count <= ContractLimits.maxEnvelopeBytes else {
            return replyError(c, requestID(payload), .tooLarge, "request over \(ContractLimits.maxEnvelopeBytes) bytes")
        }
        let request: JSON
        do {
            request = try payload.withUnsafeBytes { (p) throws(JSONError) -> JSON in try JSONParser.parse(p, maxDepth: ContractLimits.maxJSONDepth) }
        } catch let error as JSONError {
            return replyError(c, requestID(payload), .badRequest, "invalid JSON: \(error.message)")
        } catch {
            return replyError(c, requestID(payload), .badRequest, "invalid JSON")
        }
        guard case .object = request else { return replyError(c, nil, .badRequest, "a request is a JSON object") }
        guard let idValue = request["id"], let id = idValue.intValue, case .int = idValue else {
            return replyError(c, nil, .badRequest, "id must be an integer")
        }
        guard let name = request["op"]?.stringValue else { return replyError(c, id, .badRequest, "op must be a string") }
        let op = Op(rawValue: name)
        current = (op, monotonicMicros())
        defer {
            // Store-backed ops are timed when their reply leaves (SessionHop).
            if let op, !op.isStoreBacked { chat.metrics.recordOp(op, micros: monotonicMicros() - current.started) }
        }
        switch op {
        case .auth:
            guard let token = request["token"]?.stringValue else { return replyError(c, id, .badRequest, "token must be a string") }
            return authenticate(c, token: token, requestID: id)
        case .ping:
            return reply(c, id) { _ in }
        default:
            break
        }
        guard let user else { return replyError(c, id, .unauthorized, "authenticate first with the auth op") }
        guard let op else { return replyError(c, id, .badRequest, "unknown op \(JSONText.quote(String(name.prefix(40))))") }
        // Each of these ends in a store job: a client may not queue them without bound.
        if op.isStoreBacked && inFlight >= chat.limits.maxInFlight {
            return replyError(c, id, .rateLimited, "more than \(chat.limits.maxInFlight) requests in flight; wait for replies")
        }
        switch op {
        case .auth, .ping: break // answered above, before authentication
        case .subscribe: subscribe(c, id, request, user)
        case .unsubscribe: unsubscribe(c, id, request)
        case .send: send(c, id, request, user)
        case .history: history(c, id, request, user)
        case .read: read(c, id, request, user)
        case .typing: typing(c, id, request, user)
        case .presence: presence(c, id, request, user)
        case .status: status(c, id, request, user)
        case .conversations: conversations(c, id, request, user)
        case .notifications: notifications(c, id, request, user)
        case .notificationsRead: notificationsRead(c, id, request, user)
        case .adminBroadcast: adminBroadcast(c, id, request, user)
        case .adminStats: adminStats(c, id, user)
        }
    }

    /// Over the op rate: `rate_limited` with the request's id (found by a scan, not a parse),
    /// and close 1008 for a client that keeps going.
    private func refuseOverRate(_ c: Connection, _ payload: [UInt8]) {
        rateStrikes += 1
        if rateStrikes > chat.limits.maxRateLimitStrikes {
            Log.info("rate_limit_close", ["conn": "\(c.id)", "user": user?.id ?? "-", "peer": c.peer])
            return c.close(.policyViolation, reason: "rate limit exceeded")
        }
        if rateStrikes == 1 { Log.info("rate_limited", ["conn": "\(c.id)", "user": user?.id ?? "-"]) }
        replyError(c, requestID(payload), .rateLimited, "more than \(chat.limits.opsPerSecond) ops per second; slow down")
    }

    /// The id of a request the hub answers without parsing it, found in its first 64 KiB.
    private func requestID(_ payload: [UInt8]) -> Int64? {
        JSONIDScan.topLevelID(payload, limit: ContractLimits.maxEnvelopeBytes)
    }

    /// Takes one op from the connection's bucket (always true when the limit is off).
    private func takeOpToken(_ c: Connection) -> Bool {
        let rate = chat.limits.opsPerSecond
        guard rate > 0 else { return true }
        let now = c.loop.now
        opTokens = min(Double(chat.limits.opsBurst), opTokens + Double(now - opTokensAt) * Double(rate) / 1000)
        opTokensAt = now
        guard opTokens >= 1 else { return false }
        opTokens -= 1
        return true
    }

    // MARK: auth

    private func authenticate(_ c: Connection, token: String, requestID: Int64?) {
        if user != nil { return replyError(c, requestID, .conflict, "already authenticated") }
        let claims: TokenClaims
        do {
            claims = try chat.verifier.verify(token, now: wallMillis() / 1000)
        } catch {
            Log.info("auth_failed", ["conn": "\(c.id)", "peer": c.peer, "reason": error.message])
            chat.metrics.authFailures.add(1, ordering: .relaxed)
            replyError(c, requestID, .unauthorized, error.message)
            c.close(.unauthorized, reason: "invalid token")
            return
        }
        let u = SessionUser(id: claims.sub, role: claims.role, name: claims.name, services: claims.services)
        guard chat.online.connected(u, limit: chat.limits.maxConnectionsPerUser) else {
            Log.info("user_connection_limit", ["conn": "\(c.id)", "user": u.id, "limit": "\(chat.limits.maxConnectionsPerUser)"])
            replyError(c, requestID, .rateLimited, "\(u.id) already has \(chat.limits.maxConnectionsPerUser) connections")
            c.close(.policyViolation, reason: "too many connections for this user")
            return
        }
        chat.unauthenticated.subtract(1, ordering: .relaxed)
        user = u
        chat.storeUserIfChanged(u)
        chat.seen.record(UserSeen(user: u.id, at: wallMillis()))
        // Every authenticated connection receives its own user channel, and the broadcasts
        // of its audiences.
        let own = Channel.user(u.id)
        let ownSubscription = Subscription(channel: own, ready: true)
        subscriptions[own.name] = ownSubscription
        chat.router.subscribe(self, to: own.name, loop: c.loop.index, subscription: ownSubscription)
        broadcastChannels = [Channel.broadcastChannel("all"), Channel.broadcastChannel(u.role.rawValue)]
        for name in broadcastChannels { chat.router.subscribe(self, to: name, loop: c.loop.index, subscription: nil) }
        let session = "\(c.id)"
        reply(c, requestID) { w in
            w.key("user"); w.string(u.id)
            w.key("role"); w.string(u.role.rawValue)
            w.key("name"); w.string(u.name)
            w.key("session"); w.string(session)
            w.key("server_time"); w.int(wallMillis())
        }
    }

    // MARK: channels

    /// The channel named by `request["channel"]` if the user may use it; replies otherwise.
    private func channel(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) -> (Channel, Authorizer.Access)? {
        guard let name = request["channel"]?.stringValue else {
            replyError(c, id, .badRequest, "channel must be a string")
            return nil
        }
        guard let channel = Channel(name) else {
            replyError(c, id, .notFound, "no such channel")
            return nil
        }
        let access = Authorizer.access(user, channel, directory: chat.directory)
        guard access != .denied else {
            Log.info("forbidden", ["user": user.id, "channel": name])
            replyError(c, id, .forbidden, "not allowed on this channel")
            return nil
        }
        return (channel, access)
    }

    private func optionalInt(_ request: JSON, _ key: String) -> (present: Bool, value: Int64?) {
        guard let v = request[key], !v.isNull else { return (false, nil) }
        return (true, v.intValue)
    }

    private func subscribe(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, access) = channel(c, id, request, user) else { return }
        let since = optionalInt(request, "since")
        if since.present && (since.value ?? -1) < 0 {
            return replyError(c, id, .badRequest, "since must be a non-negative integer")
        }
        guard case .conversation(let key) = channel else {
            return reply(c, id) { w in
                w.key("last_seq"); w.int(0)
                w.key("messages"); w.beginArray(); w.endArray()
                w.key("more"); w.bool(false)
            }
        }
        if subscriptions[channel.name] == nil && subscriptions.count >= chat.limits.maxSubscriptions {
            return replyError(c, id, .tooLarge, "more than \(chat.limits.maxSubscriptions) subscriptions on one connection")
        }
        if access == .observer { chat.store.recordAudit(actor: user.id, action: "subscribe", target: key.channel, ts: wallMillis()) }
        // Registered first, fetched second: whatever commits after this point arrives live
        // (held until the fetch is back), whatever committed before is in the fetch.
        let sub = subscriptions[channel.name] ?? Subscription(channel: channel)
        sub.ready = false
        if !sub.joined && access == .participant {
            sub.joined = true
            if chat.presence.join(channel.name, user) { chat.broker.publish(.membership("join", channel.name, user)) }
        }
        subscriptions[channel.name] = sub
        chat.router.subscribe(self, to: channel.name, loop: c.loop.index, subscription: sub)
        let store = chat.store
        let limit = ContractLimits.maxPage
        let name = channel.name
        inFlight += 1
        if let after = since.value {
            store.messages(key, after: after, limit: limit) { result in
                store.conversationState(key) { state in
                    let page = result.flatMap { p in state.map { (p, $0.lastSeq, $0.readMarks) } }
                    hop.run { s, c in s.subscribed(c, id, name, since: after, page) }
                }
            }
        } else {
            store.conversationState(key) { state in
                let page = state.map { (MessagePage(messages: [], more: false), $0.lastSeq, $0.readMarks) }
                hop.run { s, c in s.subscribed(c, id, name, since: nil, page) }
            }
        }
    }

    private func subscribed(_ c: Connection, _ id: Int64, _ name: String, since: Int64?,
                            _ result: Result<(MessagePage, Int64, [String: Int64]), StoreError>) {
        inFlight -= 1
        guard let sub = subscriptions[name] else { return } // unsubscribed meanwhile
        switch result {
        case .failure(let e):
            drop(name, loop: c.loop.index)
            return replyStoreError(c, id, e)
        case .success(let (page, lastSeq, marks)):
            // A `since` past the end means "from the end": never skip messages not yet sent.
            sub.next = (page.messages.last?.seq ?? min(since ?? lastSeq, lastSeq)) + 1
            // Participants only: an observing admin's mark leaves no trace.
            var participants: Set<String> = []
            if case .conversation(let key) = sub.channel {
                participants.insert(key.clientId)
                if let agent = chat.directory.agent(for: key) { participants.insert(agent) }
            }
            participants.remove(user?.id ?? "")
            reply(c, id) { w in
                w.key("last_seq"); w.int(lastSeq)
                w.key("messages"); w.messageList(page.messages)
                w.key("more"); w.bool(page.more)
                // The other participants' read marks (read ticks on what was already there).
                w.key("read_marks"); w.objects(marks.filter { participants.contains($0.key) }.sorted { $0.key < $1.key }) { w, m in
                    w.key("user"); w.string(m.key)
                    w.key("seq"); w.int(m.value)
                }
            }
            if page.more {
                catchUp(c, name) // the rest follows as pushes, in order
            } else {
                release(c, name)
            }
        }
    }

    /// Fetches what this connection is missing before `next` can continue, then releases held pushes.
    private func catchUp(_ c: Connection, _ name: String) {
        let hop = SessionHop(loop: c.loop, id: c.id) // not an op of its own: untimed
        guard let sub = subscriptions[name], case .conversation(let key) = sub.channel else { return }
        sub.ready = false
        chat.store.messages(key, after: sub.next - 1, limit: ContractLimits.maxPage) { result in
            hop.run { s, c in s.caughtUp(c, name, result) }
        }
    }

    private func caughtUp(_ c: Connection, _ name: String, _ result: Result<MessagePage, StoreError>) {
        guard let sub = subscriptions[name] else { return }
        guard case .success(let page) = result else {
            // Storage trouble: the client recovers with `since` after reconnecting.
            c.close(.internalError, reason: "could not catch up")
            return
        }
        for m in page.messages where m.seq == sub.next {
            c.sendFrame(Publication.message(m).frame)
            sub.next += 1
        }
        guard page.more else { return release(c, name) }
        // Paced by the socket: a client that reads slower than the store can be read gets the
        // next page once its queue has drained, instead of being flooded into a 4009. The next
        // page waits as soon as it could take the queue past the count at which a socket that
        // refuses output counts as stuck, so a catch-up alone never looks like a stuck reader.
        if c.queuedFrames + ContractLimits.maxPage > c.limits.maxStalledFrames {
            drainedCatchUps.insert(name)
            c.notifyWhenDrained()
        } else {
            catchUp(c, name)
        }
    }

    func didDrain(_ c: Connection) {
        let names = drainedCatchUps
        drainedCatchUps = []
        for name in names { catchUp(c, name) }
    }

    /// Marks the subscription live and delivers what was held, in order.
    private func release(_ c: Connection, _ name: String) {
        guard let sub = subscriptions[name] else { return }
        sub.ready = true
        let held = sub.held
        sub.held = []
        heldPushes -= held.count
        c.setHeldPushes(heldPushes) // before they are queued: counted once
        for p in held { deliver(p, sub) }
    }

    /// A publication for a channel this session subscribed to (on the session's loop), with the
    /// subscription the router holds for it: nil for a broadcast to one of its audiences.
    func deliver(_ p: Publication, _ sub: Subscription?) {
        guard let loop, let id = connectionID, let c = loop.connection(id) else { return }
        guard let sub else {
            if broadcastChannels.contains(p.channel) { sendNotification(p, c) }
            return
        }
        guard sub.ready else { return hold(p, in: sub, c) }
        guard let seq = p.seq else { return sendNotification(p, c) }
        if seq < sub.next { return } // already delivered (fetched before it arrived live)
        if seq > sub.next {
            // A gap (a push overtaken by a fetch boundary): fetch what is missing first.
            hold(p, in: sub, c)
            return catchUp(c, p.channel)
        }
        c.sendFrame(p.frame)
        sub.next += 1
    }

    /// A push that is not a chat message; a notification's is recorded for its receipt.
    private func sendNotification(_ p: Publication, _ c: Connection) {
        guard c.sendFrame(p.frame) else { return } // not written: no receipt
        if let nid = p.notificationID, let user {
            chat.pushes.record(PushedNotification(notification: nid, user: user.id, at: wallMillis()))
            chat.metrics.notificationsPushed.add(1, ordering: .relaxed)
        }
    }

    /// Keeps a push until the fetch in flight is back. Held pushes count toward the stuck rule
    /// like queued ones, so a reader that stops reading during a catch-up (whose next page
    /// waits for the socket to drain) is cut off as any stuck reader is. Bounded as well: a
    /// connection that cannot catch up is told to recover with `since` (4009) rather than grow
    /// without limit.
    private func hold(_ p: Publication, in sub: Subscription, _ c: Connection) {
        guard sub.held.count < chat.limits.maxHeldPushes else {
            Log.info("slow_consumer", ["conn": "\(c.id)", "channel": p.channel, "held": "\(sub.held.count)"])
            return c.fail(code: .slowConsumer, reason: "too far behind; reconnect with since")
        }
        sub.held.append(p)
        heldPushes += 1
        c.setHeldPushes(heldPushes)
    }

    private func unsubscribe(_ c: Connection, _ id: Int64, _ request: JSON) {
        guard let name = request["channel"]?.stringValue else { return replyError(c, id, .badRequest, "channel must be a string") }
        if let user, name == Channel.user(user.id).name {
            return replyError(c, id, .badRequest, "the own user channel cannot be unsubscribed")
        }
        drop(name, loop: c.loop.index)
        reply(c, id) { _ in }
    }

    // MARK: messages

    private func send(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, access) = channel(c, id, request, user) else { return }
        guard case .conversation(let key) = channel else { return replyError(c, id, .badRequest, "send goes to a conversation channel") }
        let observer = access == .observer
        guard let text = request["text"]?.stringValue else { return replyError(c, id, .badRequest, "text must be a string") }
        guard !MessageText.isBlank(text) else { return replyError(c, id, .badRequest, "text must contain something other than white space") }
        guard text.count <= ContractLimits.maxText else {
            return replyError(c, id, .tooLarge, "text over \(ContractLimits.maxText) characters")
        }
        guard let clientMsgId = request["client_msg_id"]?.stringValue, !clientMsgId.isEmpty,
              clientMsgId.count <= ContractLimits.maxClientMsgId else {
            return replyError(c, id, .badRequest, "client_msg_id must be a string of 1–\(ContractLimits.maxClientMsgId) characters")
        }
        let chat = self.chat
        let message = NewMessage(conversation: key, sender: user.record, text: text, clientMsgId: clientMsgId, ts: wallMillis())
        inFlight += 1
        chat.store.appendMessage(message, notify: chat.unwatchingParticipants(key, sender: user.id)) { result in
            // On the writer thread, in commit order: the ack is queued before the push, and
            // pushes leave in seq order.
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let a):
                    s.reply(c, id) { w in
                        w.key("seq"); w.int(a.message.seq)
                        w.key("msg_id"); w.int(a.message.msgId)
                        w.key("ts"); w.int(a.message.ts)
                        w.key("duplicate"); w.bool(a.duplicate)
                    }
                case .failure(let e):
                    s.replyStoreError(c, id, e)
                }
            }
            if case .success(let a) = result { chat.messageCommitted(a, senderObserves: observer) }
        }
    }

    private func history(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, access) = channel(c, id, request, user) else { return }
        guard case .conversation(let key) = channel else { return replyError(c, id, .badRequest, "history is kept for conversation channels") }
        let before = optionalInt(request, "before")
        if before.present && (before.value ?? 0) < 1 { return replyError(c, id, .badRequest, "before must be a positive integer") }
        let limit = optionalInt(request, "limit")
        let n = limit.present ? (limit.value ?? 0) : Int64(ContractLimits.defaultPage)
        guard (1...Int64(ContractLimits.maxPage)).contains(n) else { return replyError(c, id, .badRequest, "limit must be 1–\(ContractLimits.maxPage)") }
        if access == .observer { chat.store.recordAudit(actor: user.id, action: "history", target: key.channel, ts: wallMillis()) }
        inFlight += 1
        chat.store.messages(key, before: before.value, limit: Int(n)) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let page):
                    s.reply(c, id) { w in
                        w.key("messages"); w.messageList(page.messages)
                        w.key("more"); w.bool(page.more)
                    }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    private func read(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, access) = channel(c, id, request, user) else { return }
        guard case .conversation(let key) = channel else { return replyError(c, id, .badRequest, "read marks are kept for conversation channels") }
        guard let seq = request["seq"]?.intValue, seq >= 0 else { return replyError(c, id, .badRequest, "seq must be a non-negative integer") }
        let observer = access == .observer
        let userID = user.id
        inFlight += 1
        let chat = self.chat
        chat.store.markRead(user: user.id, key, seq: seq, now: wallMillis()) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let r): s.reply(c, id) { w in w.key("seq"); w.int(r.mark) }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
            if case .success(let r) = result { chat.readMarkMoved(key, user: userID, r, announce: !observer) }
        }
    }

    // MARK: presence, status, typing, conversations

    private func typing(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard let (channel, access) = channel(c, id, request, user) else { return }
        guard case .conversation = channel else { return replyError(c, id, .badRequest, "typing goes to a conversation channel") }
        reply(c, id) { _ in }
        // An observing admin leaves no trace; at most one push per 2 s per user and channel.
        guard access == .participant, chat.presence.allowTyping(user.id, channel.name, now: c.loop.now) else { return }
        chat.broker.publish(.typing(channel.name, user))
    }

    private func presence(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard let (channel, _) = channel(c, id, request, user) else { return }
        let online = chat.presence.online(channel.name)
        reply(c, id) { w in
            w.key("online"); w.beginArray()
            for (m, status) in online {
                w.beginObject()
                w.key("id"); w.string(m.id)
                w.key("role"); w.string(m.role.rawValue)
                w.key("name"); w.string(m.name)
                w.key("status"); w.string(status)
                w.endObject()
            }
            w.endArray()
        }
    }

    private func status(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard user.role != .client else { return replyError(c, id, .forbidden, "status is for agents and admins") }
        guard let value = request["status"]?.stringValue, Vocabulary.presenceStatuses.contains(value) else {
            return replyError(c, id, .badRequest, "status must be available, busy or away")
        }
        chat.presence.setStatus(user.id, value)
        reply(c, id) { _ in }
        var channels = Set(chat.directory.conversations(ofAgent: user.id).map(\.channel))
        for (name, sub) in subscriptions where sub.joined { channels.insert(name) }
        for name in channels {
            chat.broker.publish(.status(name, user: user.id, value))
        }
    }

    private func conversations(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let service = optionalChoice(c, id, request, "service", Vocabulary.services) else { return }
        let before = optionalInt(request, "before")
        if before.present && before.value == nil { return replyError(c, id, .badRequest, "before must be an integer (a ts)") }
        let limitParam = optionalInt(request, "limit")
        let limit = limitParam.present ? (limitParam.value ?? 0) : Int64(ContractLimits.defaultPage)
        guard (1...Int64(ContractLimits.maxPage)).contains(limit) else { return replyError(c, id, .badRequest, "limit must be 1–\(ContractLimits.maxPage)") }
        let store = chat.store
        let userID = user.id
        inFlight += 1
        let finish: @Sendable ([ConversationKey]) -> Void = { keys in
            let keys = keys.filter { service == nil || $0.service == service }
            store.conversations(keys, for: userID) { result in
                hop.run { s, c in
                    s.inFlight -= 1
                    s.conversationsFetched(c, id, result, before: before.value, limit: Int(limit))
                }
            }
        }
        switch user.role {
        case .client:
            finish((user.services ?? Vocabulary.services).map { ConversationKey(service: $0, clientId: user.id) })
        case .websiteAgent, .marketingAgent:
            finish(chat.directory.conversations(ofAgent: user.id).filter { user.role.mayBeAssigned(for: $0.service) })
        case .admin:
            let assigned = chat.directory.allConversations()
            store.allConversations(service: service) { result in
                finish(Array(Set(assigned + ((try? result.get()) ?? []))))
            }
        }
    }

    private func conversationsFetched(_ c: Connection, _ id: Int64, _ result: Result<[ConversationSummary], StoreError>,
                                      before: Int64?, limit: Int) {
        guard case .success(var list) = result else {
            if case .failure(let e) = result { replyStoreError(c, id, e) }
            return
        }
        // Most recent activity first; conversations without messages last, by channel.
        list.sort { a, b in
            let ta = a.lastMessage?.ts ?? -1, tb = b.lastMessage?.ts ?? -1
            return ta != tb ? ta > tb : a.conversation.channel < b.conversation.channel
        }
        if let before { list = list.filter { ($0.lastMessage?.ts ?? -1) < before } }
        let more = list.count > limit
        let page = list.prefix(limit)
        reply(c, id) { w in
            w.key("conversations"); w.beginArray()
            for s in page {
                w.beginObject()
                w.key("channel"); w.string(s.conversation.channel)
                w.key("client"); w.string(s.conversation.clientId)
                w.key("agents"); w.beginArray(); for a in s.agents { w.string(a) }; w.endArray()
                w.key("last_message")
                if let m = s.lastMessage { w.beginObject(); w.messageFields(m); w.endObject() } else { w.null() }
                w.key("unread"); w.int(s.unread)
                w.key("names"); w.beginObject()
                for (id, name) in s.names.sorted(by: { $0.key < $1.key }) { w.key(id); w.string(name) }
                w.endObject()
                w.endObject()
            }
            w.endArray()
            w.key("more"); w.bool(more)
        }
    }

    // MARK: notifications

    private func notifications(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        let query: NotificationQuery
        do {
            query = try BridgeAPI.notificationQuery { name in
                guard let v = request[name], !v.isNull else { return nil }
                return v
            }
        } catch {
            return replyError(c, id, .badRequest, error.message)
        }
        inFlight += 1
        chat.notifications.notifications(for: user.id, query) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let page): s.reply(c, id) { w in BridgeAPI.pageFields(&w, page) }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    private func notificationsRead(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        let selection: ReadSelection
        if let all = request["all"], !all.isNull {
            guard all.boolValue == true else { return replyError(c, id, .badRequest, "all must be true") }
            selection = .all
        } else if let list = request["ids"]?.arrayValue {
            guard !list.isEmpty, list.count <= ContractLimits.maxReadIDs else { return replyError(c, id, .badRequest, "ids must hold 1–1000 notification ids") }
            var ids: [Int64] = []
            for v in list {
                guard case .int(let n) = v, n >= 1 else { return replyError(c, id, .badRequest, "ids must be positive integers") }
                ids.append(n)
            }
            selection = .ids(ids)
        } else {
            return replyError(c, id, .badRequest, "give ids (an array) or all: true")
        }
        guard let service = optionalChoice(c, id, request, "service", Vocabulary.notificationServices) else { return }
        let chat = self.chat
        let userID = user.id
        inFlight += 1
        chat.notifications.markNotificationsRead(user: user.id, selection, service: service, now: wallMillis()) { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let unread): s.reply(c, id) { w in w.key("unread"); w.unreadObject(unread) }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
            // Every connection of the user (other tabs too) sees the new counts.
            if case .success(let unread) = result { chat.pushUnread(unread, to: userID) }
        }
    }

    // MARK: admin (extensions for the console: docs/protocol.md "Admin ops")

    private func adminBroadcast(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        guard user.role == .admin else { return replyError(c, id, .forbidden, "admin.broadcast is for admins") }
        guard case .object(let object) = request else { return }
        // The same fields and rules as POST /v1/broadcasts.
        let params = RequestBody(object: object)
        let audience: String, title: String, body: String
        do {
            audience = try params.choice("audience", ["all"] + Vocabulary.roles, required: false) ?? "all"
            title = try params.requiredString("title", max: ContractLimits.maxTitle)
            body = try params.string("body", required: false, min: 0, max: ContractLimits.maxBody) ?? ""
        } catch {
            return replyError(c, id, .badRequest, error.message)
        }
        let hop = hop(c)
        let chat = self.chat
        let deliveredLive = chat.online.count(in: audience) // counted as the bridge counts it: before
        inFlight += 1
        Log.info("admin_broadcast", ["user": user.id, "audience": audience])
        chat.notifications.createBroadcast(audience: audience, title: title, body: body, data: "{}", now: wallMillis(),
                                           claim: nil) { result in
            if case .success(.fresh(let record)) = result { chat.broadcast(record) }
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(.fresh(let record)):
                    s.reply(c, id) { w in
                        w.key("id"); w.int(record.id)
                        w.key("delivered_live"); w.int(deliveredLive)
                    }
                case .success(.replay), .success(.mismatch): break // no Idempotency-Key here: cannot happen
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    private func adminStats(_ c: Connection, _ id: Int64, _ user: SessionUser) {
        guard user.role == .admin else { return replyError(c, id, .forbidden, "admin.stats is for admins") }
        let hop = hop(c)
        let live = chat.liveStats()
        let metrics = chat.metrics
        inFlight += 1
        chat.store.storedTotals { result in
            hop.run { s, c in
                s.inFlight -= 1
                switch result {
                case .success(let totals):
                    s.reply(c, id) { w in
                        w.liveStatsFields(live, metrics)
                        w.storedTotalsFields(totals)
                    }
                case .failure(let e): s.replyStoreError(c, id, e)
                }
            }
        }
    }

    /// An optional string param from `allowed`: `.some(nil)` when absent, nil (after replying
    /// `bad_request`) when present but not one of them.
    private func optionalChoice(_ c: Connection, _ id: Int64, _ request: JSON, _ key: String, _ allowed: [String]) -> String?? {
        guard let v = request[key], !v.isNull else { return .some(nil) }
        guard let s = v.stringValue, allowed.contains(s) else {
            replyError(c, id, .badRequest, "\(key) must be one of \(allowed.joined(separator: ", "))")
            return nil
        }
        return .some(s)
    }

    /// The way back to this session for a store completion, timing the current op.
    private func hop(_ c: Connection) -> SessionHop {
        SessionHop(loop: c.loop, id: c.id, op: current.op, started: current.started, metrics: chat.metrics)
    }

    // MARK: replies

    private func reply(_ c: Connection, _ id: Int64?, _ result: (inout JSONWriter) -> Void) {
        var w = JSONWriter(capacity: 128)
        w.beginObject()
        w.key("id"); if let id { w.int(id) } else { w.null() }
        w.key("ok"); w.bool(true)
        w.key("result"); w.beginObject(); result(&w); w.endObject()
        w.endObject()
        c.send(.text, w.bytes)
    }

    private func replyError(_ c: Connection, _ id: Int64?, _ code: ErrorCode, _ message: String) {
        var w = JSONWriter(capacity: 128)
        w.beginObject()
        w.key("id"); if let id { w.int(id) } else { w.null() }
        w.key("ok"); w.bool(false)
        w.key("error"); w.beginObject()
        w.key("code"); w.string(code.rawValue)
        w.key("message"); w.string(message)
        w.endObject()
        w.endObject()
        c.send(.text, w.bytes)
    }

    private func replyStoreError(_ c: Connection, _ id: Int64, _ e: StoreError) {
        if case .internalError(let why) = e { Log.error("store_error", ["reason": why]) }
        let (code, message) = e.reply
        replyError(c, id, code, message)
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
