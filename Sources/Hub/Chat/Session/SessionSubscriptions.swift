import Core
import Persistence
import Protocol

// subscribe and unsubscribe, and per-channel delivery: catch-up from the store, held live
// pushes, gap fill, and the presence joins and leaves a subscription makes.
extension Session {
    func subscribe(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        let hop = hop(c)
        guard let (channel, access) = channel(c, id, request, user) else { return }
        let name = channel.name // built once: each `channel.name` writes the string anew
        let since = optionalInt(request, "since")
        if since.present && (since.value ?? -1) < 0 {
            return replyError(c, id, .badRequest, "since must be a non-negative integer")
        }
        var epoch: String?
        if let v = request["epoch"], !v.isNull {
            guard let s = v.stringValue, s.utf8.count <= ContractLimits.maxEpoch else {
                return replyError(c, id, .badRequest, "epoch must be a string of at most \(ContractLimits.maxEpoch) bytes")
            }
            epoch = s
        }
        // A `since` from another epoch is a position in other streams (a restored or replaced
        // store): answer from the beginning, marked `reset`, instead of a silent gap.
        let reset = since.value != nil && epoch != nil && epoch != chat.store.epoch
        let after = reset ? 0 : since.value
        guard case .conversation(let key) = channel else {
            let epoch = chat.store.epoch
            return reply(c, id) { w in
                w.key("last_seq"); w.int(0)
                w.key("messages"); w.beginArray(); w.endArray()
                w.key("more"); w.bool(false)
                w.key("epoch"); w.string(epoch)
            }
        }
        if subscriptions[name] == nil && subscriptions.count >= chat.limits.maxSubscriptions {
            return replyError(c, id, .tooLarge, "more than \(chat.limits.maxSubscriptions) subscriptions on one connection")
        }
        if access == .observer { chat.store.recordAudit(actor: user.id, action: "subscribe", target: key.channel, ts: wallMillis()) }
        // Registered first, fetched second: whatever commits after this point arrives live
        // (held until the fetch is back), whatever committed before is in the fetch.
        let sub = subscriptions[name] ?? Subscription(channel: channel)
        sub.delivery.startFetch()
        if !sub.joined && access == .participant {
            sub.joined = true
            if chat.presence.join(name, user) { chat.broker.publish(.membership("join", name, user)) }
        }
        subscriptions[name] = sub
        chat.router.subscribe(self, to: name, loop: c.loop.index, subscription: sub)
        let store = chat.store
        let limit = ContractLimits.maxPage
        inFlight += 1
        // Without `since` the reply is the last seq and the read marks: on one node, what this
        // node's commits keep of a conversation already subscribed here (read after the
        // registration above, like the store would be).
        let cache = chat.subscribeStates
        if after == nil, let known = cache?.state(name) {
            subscribed(c, id, name, since: nil, reset: reset,
                       .success(ConversationState(lastSeq: known.lastSeq, readMarks: known.readMarks, page: .empty)))
            chat.metrics.recordOp(.subscribe, micros: monotonicMicros() - currentStarted)
            return
        }
        let generation = cache?.prepare(name)
        store.conversationState(key, messagesAfter: after, limit: limit) { state in
            if let cache, let generation, case .success(let known) = state {
                cache.fill(name, generation: generation, lastSeq: known.lastSeq, readMarks: known.readMarks)
            }
            hop.run { s, c in s.subscribed(c, id, name, since: after, reset: reset, state) }
        }
    }

    func subscribed(_ c: Connection, _ id: Int64, _ name: String, since: Int64?, reset: Bool,
                    _ result: Result<ConversationState, StoreError>) {
        inFlight -= 1
        guard let sub = subscriptions[name] else { return } // unsubscribed meanwhile
        switch result {
        case .failure(let e):
            drop(name, loop: c.loop.index)
            return replyStoreError(c, id, e)
        case .success(let state):
            let page = state.page, lastSeq = state.lastSeq
            let step = sub.delivery.onSubscribed(since: since, lastSeq: lastSeq, pageLast: page.messages.last?.seq,
                                                 more: page.more)
            // The other participants' read marks: the client's and the agent's, not this user's
            // (an observing admin's mark leaves no trace).
            var marks: [(user: String, seq: Int64)] = []
            if !state.readMarks.isEmpty, case .conversation(let key) = sub.channel {
                let me = user?.id, agent = chat.directory.agent(for: key)
                for (u, seq) in state.readMarks where u != me && (u == key.clientId || u == agent) {
                    marks.append((u, seq))
                }
                marks.sort { $0.user < $1.user }
            }
            reply(c, id) { w in
                w.key("last_seq"); w.int(lastSeq)
                w.key("messages"); w.messageList(visible(page.messages))
                w.key("more"); w.bool(page.more)
                // The other participants' read marks (read ticks on what was already there).
                w.key("read_marks"); w.objects(marks) { w, m in
                    w.key("user"); w.string(m.user)
                    w.key("seq"); w.int(m.seq)
                }
                w.key("epoch"); w.string(chat.store.epoch)
                if reset { w.key("reset"); w.bool(true) }
            }
            carryOut(step, c, sub) // the rest of the page follows as pushes, in order
        }
    }

    /// Fetches what this connection is missing before it can continue live, then releases
    /// held pushes.
    func catchUp(_ c: Connection, _ sub: Subscription, after: Int64) {
        let hop = SessionHop(loop: c.loop, id: c.id) // not an op of its own: untimed
        guard case .conversation(let key) = sub.channel else { return }
        let name = sub.channel.name
        chat.store.messages(key, after: after, limit: ContractLimits.maxPage) { result in
            hop.run { s, c in s.caughtUp(c, name, result) }
        }
    }

    /// Carries out what the delivery state asks after a fetch or a page.
    func carryOut(_ step: SubscriptionDelivery.FetchStep, _ c: Connection, _ sub: Subscription) {
        switch step {
        case .fetch(let after): catchUp(c, sub, after: after)
        case .waitForDrain:
            drainedCatchUps.insert(sub.channel.name)
            c.notifyWhenDrained()
        case .release: release(c, sub)
        }
    }

    func caughtUp(_ c: Connection, _ name: String, _ result: Result<MessagePage, StoreError>) {
        guard let sub = subscriptions[name] else { return }
        guard case .success(let page) = result else {
            // Storage trouble: the client recovers with `since` after reconnecting.
            c.close(.internalError, reason: "could not catch up")
            return
        }
        // A note counts as passed for a client, unwritten.
        for m in page.messages where sub.delivery.onFetched(seq: m.seq) && (!m.isInternal || seesNotes) {
            c.sendFrame(Publication.message(m).frame)
        }
        // A client that reads slower than the store can be read gets the next page once its
        // queue has drained, instead of being flooded into a 4009.
        carryOut(sub.delivery.onPageEnd(more: page.more, queuedFrames: c.queuedFrames, pageSize: ContractLimits.maxPage,
                                        stallLimit: c.limits.maxStalledFrames), c, sub)
    }

    func didDrain(_ c: Connection) {
        let names = drainedCatchUps
        drainedCatchUps = []
        for name in names {
            guard let sub = subscriptions[name], case .conversation = sub.channel else { continue }
            catchUp(c, sub, after: sub.delivery.startFetch())
        }
    }

    /// Marks the subscription live and delivers what was held, in order.
    func release(_ c: Connection, _ sub: Subscription) {
        let held = sub.delivery.release()
        heldPushes -= held.count
        c.setHeldPushes(heldPushes) // before they are queued: counted once
        for p in held { deliver(p, sub, c) }
    }

    /// A run of publications for a channel this session subscribed to (on the session's loop,
    /// in order), with the subscription the router holds for it: nil for a broadcast to one of
    /// its audiences. With `writeNow`, what the run queued is written at once, not at the end of
    /// the turn: the router reaches a large channel's subscribers over several turns (see
    /// `LoopRegistry`), and each gets its pushes while the loop goes on to the next.
    func deliver(_ run: ArraySlice<Publication>, _ sub: Subscription?, writeNow: Bool) {
        guard let loop, let id = connectionID, let c = loop.connection(id) else { return }
        for p in run {
            // Closing (cut off by an earlier one of the run, or before): pushes are not for it.
            guard c.takesFrames else { return }
            deliver(p, sub, c)
        }
        if writeNow && c.takesFrames { loop.writes.writeNow(c) }
    }

    private func deliver(_ p: Publication, _ sub: Subscription?, _ c: Connection) {
        guard let sub else {
            if broadcastChannels.contains(p.channel) { sendNotification(p, c) }
            return
        }
        if let member = p.member, member == user?.id { return } // nobody is told of their own join or leave
        switch sub.delivery.onLive(p, maxHeld: chat.limits.maxHeldPushes) {
        case .send:
            // A note's pushes (the note, its edit, its delete) never reach a client; a note's
            // seq still counts as passed above.
            guard !p.staffOnly || seesNotes else { break }
            if p.seq == nil { sendNotification(p, c) } else { c.sendFrame(p.frame) }
        case .skipDuplicate:
            break
        case .hold:
            countHeldPush(c)
        case .holdAndFetch(let after):
            countHeldPush(c)
            catchUp(c, sub, after: after)
        case .overHeldCap(let count):
            // Held pushes count toward the stuck rule like queued ones, so a reader that stops
            // reading during a catch-up (whose next page waits for the socket to drain) is cut
            // off as any stuck reader is. Bounded as well: a connection that cannot catch up is
            // told to recover with `since` rather than grow without limit.
            Log.info("slow_consumer", ["conn": "\(c.id)", "channel": p.channel, "held": "\(count)"])
            c.fail(code: .slowConsumer, reason: "too far behind; reconnect with since")
        }
    }

    /// A push that is not a chat message; a notification's is recorded for its receipt.
    func sendNotification(_ p: Publication, _ c: Connection) {
        guard c.sendFrame(p.frame) else { return } // not written: no receipt
        if let nid = p.notificationID, let user {
            chat.pushes.record(PushedNotification(notification: nid, user: user.id, at: wallMillis()))
            chat.metrics.notificationsPushed.add(1, ordering: .relaxed)
        }
    }

    /// One more push held: the connection's count is the sum over its subscriptions.
    func countHeldPush(_ c: Connection) {
        heldPushes += 1
        c.setHeldPushes(heldPushes)
    }

    func unsubscribe(_ c: Connection, _ id: Int64, _ request: JSON) {
        guard let name = request["channel"]?.stringValue else { return replyError(c, id, .badRequest, "channel must be a string") }
        if let user, name == Channel.user(user.id).name {
            return replyError(c, id, .badRequest, "the own user channel cannot be unsubscribed")
        }
        drop(name, loop: c.loop.index)
        reply(c, id) { _ in }
    }

    /// Ends a subscription: out of the router, and out of presence (a `leave` on the last).
    func drop(_ name: String, loop: Int) {
        guard let sub = subscriptions.removeValue(forKey: name) else { return }
        chat.router.unsubscribe(self, from: name, loop: loop, subscription: sub)
        if sub.delivery.heldCount > 0 {
            heldPushes -= sub.delivery.heldCount
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
}
