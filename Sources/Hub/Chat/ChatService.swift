import Foundation
import Metrics
import Notifications
import Synchronization
import Core
import Persistence
import Protocol

// What every chat session shares: the store, the assignment directory, the router, the broker
// and the token verifier. Sendable; per-connection state lives in Session.
final class ChatService: Sendable {
    let store: Store
    let notifications: NotificationStore
    let directory: any AssignmentDirectory
    /// Local subscriptions (subscribe, unsubscribe); every push goes through `broker`.
    let router: Router
    let broker: Broker
    let verifier: JWTVerifier
    let limits: ChatLimits
    let metrics: HubMetrics
    let presence: any PresenceRegistry
    let online: any OnlineRegistry
    let pushes: BatchRecorder<PushedNotification>
    let seen: BatchRecorder<UserSeen>
    /// Users this process stored from their token claims, by a hash of those claims: a
    /// reconnect with the same claims costs the writer nothing (a connect storm of one user's
    /// tabs, or everyone reconnecting after a restart, is not thousands of identical upserts).
    /// 8 bytes a user, forgotten wholesale past `maxStoredUsers`.
    private let storedUsers = Locked<[String: Int]>([:])
    static let maxStoredUsers = 200_000
    let counters: EngineCounters
    /// WebSocket connections opened but not yet authenticated (bounded by `maxUnauthenticated`).
    let unauthenticated = Atomic<Int>(0)
    /// This node's id when it is one of several (session ids carry it, so they are unique
    /// across the cluster); nil on a single node.
    let nodeID: String?
    /// The last seq and read marks of the conversations subscribed here, kept by the commits:
    /// a subscribe without `since` reads them instead of the store. One node only (nil with a
    /// broker between nodes): see ConversationStateCache.
    let subscribeStates: ConversationStateCache?

    init(store: Store & NotificationStore, directory: any AssignmentDirectory, router: Router, broker: Broker? = nil, verifier: JWTVerifier,
         limits: ChatLimits = ChatLimits(), metrics: HubMetrics = HubMetrics(), counters: EngineCounters = EngineCounters(),
         presence: any PresenceRegistry = Presence(), online: any OnlineRegistry = OnlineUsers(), nodeID: String? = nil) {
        self.counters = counters
        self.nodeID = nodeID
        self.presence = presence
        self.online = online
        self.store = store
        self.notifications = store
        self.directory = directory
        self.router = router
        self.broker = broker ?? LocalBroker(router: router)
        if broker == nil {
            let cache = ConversationStateCache()
            router.onNodeInterestChange { channel, interested in if !interested { cache.drop(channel) } }
            subscribeStates = cache
        } else {
            subscribeStates = nil
        }
        self.verifier = verifier
        self.limits = limits
        self.metrics = metrics
        pushes = BatchRecorder(order: { ($0.notification, $0.user) < ($1.notification, $1.user) }) { store.recordPushes($0) }
        seen = BatchRecorder { store.usersSeen($0) }
    }

    /// An assignment changed: the directory is updated at once, and the agent who lost the
    /// conversation has every live subscription to it ended with a `revoked` push. Returns
    /// the agent it replaced.
    @discardableResult
    func reassign(_ key: ConversationKey, to agent: String?) -> String? {
        let previous = directory.agent(for: key)
        directory.setAgent(agent, for: key)
        if let previous, previous != agent { broker.revoke(key.channel, user: previous) }
        return previous
    }

    /// A stored notification to every connection of its user: the `notification` push, then
    /// the new `unread` counts.
    func notify(_ n: DeliveredNotification) {
        let channel = Channel.user(n.userId).name
        guard broker.hasInterest(channel) else { return }
        broker.publish(.notificationPush(channel: channel, type: "notification", n.record))
        broker.publish(.unread(n.userId, n.unread))
    }

    func liveStats() -> LiveStats {
        LiveStats(connections: counters.connections.load(ordering: .relaxed),
                  webSockets: counters.webSockets.load(ordering: .relaxed),
                  onlineByRole: online.byRole,
                  slowConsumerCloses: counters.slowConsumerCloses.load(ordering: .relaxed))
    }

    /// The bridge stored this user: the next connect stores its token's claims again, as
    /// before the cache (the claims a client connects with are the latest word).
    func forgetStoredUser(_ id: String) {
        storedUsers.withLock { $0[id] = nil }
    }

    /// Stores the user's claims (role, name, services) unless this process already did.
    func storeUserIfChanged(_ u: SessionUser) {
        var h = Hasher()
        h.combine(u.role.rawValue)
        h.combine(u.name)
        h.combine(u.services)
        let claims = h.finalize()
        let changed = storedUsers.withLock { m -> Bool in
            if m[u.id] == claims { return false }
            if m.count >= Self.maxStoredUsers { m.removeAll() }
            m[u.id] = claims
            return true
        }
        guard changed else { return }
        let storedUsers = self.storedUsers
        store.upsertUser(u.record, now: wallMillis()) { result in
            // Not stored after all: the next connect tries again.
            if case .failure = result { storedUsers.withLock { $0[u.id] = nil } }
        }
    }

    /// A stored broadcast to every connection of its audience (one frame for all of them).
    func broadcast(_ record: NotificationRecord) {
        metrics.broadcastsSent.add(1, ordering: .relaxed)
        metrics.notificationsStored.add(1, ordering: .relaxed)
        broker.publish(.notificationPush(channel: Channel.broadcastChannel(record.audience ?? "all"), type: "broadcast", record))
    }

    func pushUnread(_ unread: UnreadCounts, to user: String) {
        broker.publish(.unread(user, unread))
    }

    /// A participant's read mark moved (a `read` op, or a send past others' messages): their
    /// `messages` notification may have cleared on every connection, and the conversation's
    /// subscribers see the read ticks. `announce` is false for an observing admin, who leaves
    /// no trace.
    func readMarkMoved(_ key: ConversationKey, user: String, _ r: ReadResult, announce: Bool) {
        if let unread = r.clearedUnread { pushUnread(unread, to: user) }
        guard announce else { return }
        broker.publish(.read(key.channel, user: user, seq: r.mark))
    }

    /// The conversation's participants (its client and assigned agent) other than the sender
    /// who have no connection subscribed to it: they get a `messages` notification instead.
    func unwatchingParticipants(_ key: ConversationKey, sender: String) -> [String] {
        var out: [String] = []
        for user in [key.clientId, directory.agent(for: key)].compactMap({ $0 })
        where user != sender && !presence.isPresent(key.channel, user) && !out.contains(user) {
            out.append(user)
        }
        return out
    }
}

/// The chat's operational limits: deadlines, rates and bounds an operator or a test may change.
/// The contract's fixed limits are `ContractLimits`.
struct ChatLimits: Sendable {
    var authDeadlineMs: Int64 = 10_000
    var maxSubscriptions = 500
    /// Store-backed requests (send, subscribe, history, read, conversations) a connection may
    /// have unanswered; past it: `rate_limited`.
    var maxInFlight = 256
    /// Live pushes a subscription may hold while it catches up; past it: close 4009.
    var maxHeldPushes = 10_000
    /// Ops per second a connection may keep up (a token bucket), and the burst above it; 0
    /// turns the limit off. Over it: `rate_limited`; after `maxRateLimitStrikes` refusals in a
    /// row: close 1008.
    var opsPerSecond = 200
    var opsBurst = 400
    var maxRateLimitStrikes = 100
    /// Authenticated connections one user may hold at once; past it the new one is closed 1008.
    var maxConnectionsPerUser = 20
    /// WebSocket connections open but not yet authenticated, hub-wide; past it new upgrades get 503.
    var maxUnauthenticated = 2_000
    /// How long after sending a sender may edit or delete a message (`--edit-window`).
    var editWindowMs = ContractLimits.defaultEditWindowMs
    /// `--search-index`: off, `search` answers `unavailable` (the stores write no index entries).
    var searchIndex = true
    /// Where attachment URLs may point (`--attachment-origin`; http too in development mode).
    var attachments = AttachmentPolicy(origins: [], allowsHTTP: false)
}
