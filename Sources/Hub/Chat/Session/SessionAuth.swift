import Core
import Persistence
import Protocol

// The auth op, and the op rate every frame passes before it is decoded.
extension Session {
    func authenticate(_ c: Connection, token: String, requestID: Int64?) {
        if user != nil { return replyError(c, requestID, .conflict, "already authenticated") }
        let claims: TokenClaims
        do {
            claims = try chat.verifier.verify(token, now: wallMillis() / 1000)
        } catch {
            Log.info("auth_failed", ["conn": "\(c.id)", "peer": c.peer.description, "reason": error.message])
            chat.metrics.authFailures.add(1, ordering: .relaxed)
            replyError(c, requestID, .unauthorized, error.message)
            c.close(.unauthorized, reason: "invalid token")
            return
        }
        let u = SessionUser(id: claims.sub, role: claims.role, name: claims.name, services: claims.services)
        // Several nodes: other nodes' connections are counted one Redis round trip later;
        // over the limit then, this connection is closed as if refused here.
        let hop = SessionHop(loop: c.loop, id: c.id)
        guard chat.online.connected(u, limit: chat.limits.maxConnectionsPerUser,
                                    overLimitElsewhere: { hop.run { _, c in c.close(.policyViolation, reason: "too many connections for this user") } }) else {
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
        broadcastChannels = Channel.audienceChannels(of: u.role)
        for name in broadcastChannels { chat.router.subscribe(self, to: name, loop: c.loop.index, subscription: nil) }
        let session = chat.nodeID.map { "\($0)/\(c.id)" } ?? c.id.description
        reply(c, requestID) { w in
            w.key("user"); w.string(u.id)
            w.key("role"); w.string(u.role.rawValue)
            w.key("name"); w.string(u.name)
            w.key("session"); w.string(session)
            w.key("server_time"); w.int(wallMillis())
        }
    }

    /// Over the op rate: `rate_limited` with the request's id (found by a scan, not a parse),
    /// and close 1008 for a client that keeps going.
    func refuseOverRate(_ c: Connection, _ payload: UnsafeRawBufferPointer) {
        rateStrikes += 1
        if Int(rateStrikes) > chat.limits.maxRateLimitStrikes {
            Log.info("rate_limit_close", ["conn": "\(c.id)", "user": user?.id ?? "-", "peer": c.peer.description])
            return c.close(.policyViolation, reason: "rate limit exceeded")
        }
        if rateStrikes == 1 { Log.info("rate_limited", ["conn": "\(c.id)", "user": user?.id ?? "-"]) }
        replyError(c, requestID(payload), .rateLimited, "more than \(chat.limits.opsPerSecond) ops per second; slow down")
    }

    /// The id of a request the hub answers without parsing it, found in its first 64 KiB.
    func requestID(_ payload: UnsafeRawBufferPointer) -> Int64? {
        JSONIDScan.topLevelID(payload, limit: ContractLimits.maxEnvelopeBytes)
    }
}
