import Core
import Dispatch
import Persistence
import Protocol
import Synchronization

// The state every node of a cluster must agree on (presence, who is online, assignments),
// kept in Redis and mirrored on every node: the one entry point the hub wires. It owns two
// connections to the first `--broker` instance on one loop: `commands` (the Lua scripts,
// heartbeat, janitor, re-reads) and `events` (SUBSCRIBE to the cluster's state channel only,
// so a slow event stream never delays a heartbeat). All cluster state lives on that one
// instance; the broker shards publications, not this state.
//
// Liveness is per node (NodeLiveness.swift): a key with a TTL renewed by a heartbeat and a
// sorted set of nodes; a janitor holding a lease removes a dead node's members and online
// counts and publishes the `leave`s. Bound, from a node's last heartbeat to its `leave`s
// published: `nodeTTLMs + janitorMs` plus one round trip (7 s with the defaults).
//
// Repair: after every (re)connect of `commands`, after a heartbeat finds its key gone (the
// node was taken for dead), and after any failed command, the node rewrites its own share
// of Redis from local state (presence per channel, online counts) and reloads assignments
// from the store. After every (re)connect of `events`, after the event ring dropped, and
// every `mirrorRefreshMs`, it re-reads the mirrors in full.
//
// `@unchecked Sendable`: the `var`s are used only on `loop`'s thread; the rest is immutable
// or locked.
final class ClusterState: @unchecked Sendable {
    struct Timing: Sendable {
        var heartbeatMs: Int64 = 2_000
        var nodeTTLMs: Int64 = 6_000
        var janitorMs: Int64 = 1_000
        var leaseMs: Int64 = 3_000
        var mirrorRefreshMs: Int64 = 30_000
        init() {}
        /// From a node's last heartbeat to its members removed and their `leave`s published,
        /// not counting one Redis round trip.
        var deadNodeBoundMs: Int64 { nodeTTLMs + janitorMs }
    }

    let nodeID: String
    let keys: ClusterKeys
    let timing: Timing
    let presence: ClusterPresence
    let online: ClusterOnline
    let assignments: ClusterAssignments
    let wire: ClusterWire
    let commands: RedisConnection
    let events: RedisConnection
    var loop: EventLoop { wire.loop }

    // Loop thread only.
    var running = false
    /// An open connection silent this long (no reply to a heartbeat or a PING) is reopened:
    /// a dead route would leave this node deaf to the others and its heartbeats unwritten
    /// until the kernel gives up, and the reconnect's resync writes its state back.
    static let silentMs: Int64 = 3_000
    var timers: [String: TimerID] = [:]
    var mirrorGeneration = 0
    /// Events heard while a full re-read is under way, applied again on top of what it read
    /// (a read may predate them); nil when no re-read is running.
    var heardDuringRefresh: [[String]]?
    /// Past this many events heard during one re-read, they are no longer kept: another re-read follows instead.
    static let heardDuringRefreshCap = 10_000
    /// A re-read was asked for while one ran: it starts when that one ends.
    var refreshAgain = false
    var refreshStartedAt: Int64 = 0
    /// Unknown event kinds already logged (at most 64 kept).
    var unknownKindsLogged = Set<String>()
    /// Parts of the current re-read still out (online, presence).
    var refreshPartsLeft = 0
    /// What this node's cluster state did, for stats and logs; any thread may read it.
    let counters = ClusterCounters()
    /// Dead nodes reaped by this node.
    var reapedNodes: Int { counters.reapedNodes.load(ordering: .relaxed) }

    /// - endpoints: the `--broker` instances; state lives on the first.
    /// - clusterName: prefix of every key and channel (`<name>:`).
    /// - nodeID: `NodeID.isValid` (it is part of keys, fields and connection names).
    /// - loop: the loop that owns both connections and runs every callback.
    /// - directory: the assignments as loaded at start (kept, then kept in step).
    /// - loadAssignments: reads every assignment from the store (wired to `store.allAssignments`).
    init(endpoints: [RedisEndpoint], clusterName: String, nodeID: String, loop: EventLoop,
         directory: Directory = Directory(), loadAssignments: @escaping ClusterAssignments.Load,
         timing: Timing = Timing()) throws(ClusterStateError) {
        guard let endpoint = endpoints.first else { throw .noEndpoint }
        guard NodeID.isValid(nodeID) else { throw .invalidNodeID(nodeID) }
        self.nodeID = nodeID
        self.timing = timing
        keys = ClusterKeys(clusterName: clusterName)
        // Named by cluster and node (CLIENT LIST tells clusters sharing a Redis apart).
        let connectionName = keys.prefix + "state-" + nodeID
        var options = RedisConnection.Options()
        // At least 3 s, and longer than a heartbeat and a half.
        options.silentAfterMs = max(Self.silentMs, timing.heartbeatMs * 3 / 2)
        commands = RedisConnection(endpoint: endpoint, name: connectionName, role: .commands, loop: loop, options: options)
        events = RedisConnection(endpoint: endpoint, name: connectionName + "-events",
                                 role: .subscriber(InboundRing.Limits(maxMessages: 65_536, maxBytes: 16 << 20)), loop: loop, options: options)
        wire = ClusterWire(nodeID: nodeID, keys: keys, loop: loop, commands: commands)
        presence = ClusterPresence(wire: wire)
        online = ClusterOnline(wire: wire)
        assignments = ClusterAssignments(local: directory, wire: wire, load: loadAssignments)
    }

    /// Where decisions go: `membership` publishes a `join`/`leave` (the broker), `revoke`
    /// ends a user's subscriptions to a channel on this node (the Router). Call before `start`.
    func wire(membership: @escaping @Sendable (_ kind: String, _ channel: String, _ user: SessionUser) -> Void,
              revoke: @escaping @Sendable (_ channel: String, _ user: String) -> Void) {
        wire.hooks.withLock { $0 = ClusterWire.Hooks(membership: membership, revoke: revoke) }
    }

    /// Connects and starts the heartbeat, janitor and refresh timers. Returns at once; until
    /// Redis answers, every registry answers from local state.
    func start() {
        loop.execute { [self] _ in
            guard !running else { return }
            running = true
            commands.onUp = { [weak self] _ in self?.commandsUp() }
            commands.onDown = { [weak self] _ in self?.counters.redisUp.store(false, ordering: .relaxed) }
            events.onUp = { [weak self] c in
                guard let self else { return }
                c.subscribe([self.keys.state])
            }
            for (c, which) in [(commands, "commands"), (events, "events")] {
                c.onSilent = { _, ms in Log.info("cluster_redis_silent", ["connection": which, "silent_ms": "\(ms)"]) }
            }
            events.onSubscription = { [weak self] _, kind, channel in
                guard let self, kind == "subscribe", channel == self.keys.state else { return }
                self.refreshMirrors()
            }
            events.onMessage = { [weak self] _, m in self?.handle(m) }
            commands.start()
            events.start()
            every("heartbeat", timing.heartbeatMs) { $0.heartbeat() }
            every("janitor", timing.janitorMs) { $0.janitorTick() }
            every("refresh", timing.mirrorRefreshMs) { $0.refreshMirrors() }
        }
    }

    /// Stops the timers and closes both connections. With `cleanup` (a graceful shutdown) the
    /// node first removes its own members and counts from Redis and publishes their `leave`s,
    /// so nobody waits for the janitor; `done` runs after that (or after `deadlineMs`).
    /// Without it the node just goes silent, like a crashed one (tests).
    func stop(cleanup: Bool = true, deadlineMs: Int64 = 2_000, done: @escaping @Sendable () -> Void = {}) {
        loop.execute { [self] loop in
            guard running else { return done() }
            running = false
            for t in timers.values { loop.cancel(t) }
            timers = [:]
            let finish = { [self] in
                commands.close()
                events.close()
                done()
            }
            guard cleanup, commands.isUp else { return finish() }
            var finished = false
            let deadline = loop.after(ms: deadlineMs) { _ in
                if !finished { finished = true; finish() }
            }
            commands.send(["DEL", keys.node(nodeID)], nil)
            reap(nodeID) { _ in
                if !finished { finished = true; loop.cancel(deadline); finish() }
            }
        }
    }

    /// `stop`, waiting for it at most `seconds`. Never call it on `loop`'s thread (the stop
    /// runs there); call it before the loops shut down, while the broker can still publish.
    func stopAndWait(cleanup: Bool = true, seconds: Double = 3) {
        let done = DispatchSemaphore(value: 0)
        stop(cleanup: cleanup, deadlineMs: Int64(seconds * 1000) - 200) { done.signal() }
        _ = done.wait(timeout: .now() + seconds)
    }

    /// Runs `body` every `ms` while running.
    private func every(_ name: String, _ ms: Int64, _ body: @escaping (ClusterState) -> Void) {
        timers[name] = loop.after(ms: ms) { [weak self] _ in
            guard let self, self.running else { return }
            body(self)
            self.every(name, ms, body)
        }
    }

    // MARK: events

    private func handle(_ m: InboundRing.Message) {
        guard let text = String(validating: m.payload, as: UTF8.self) else { return }
        let p = text.split(separator: "\n", maxSplits: 4, omittingEmptySubsequences: false).map(String.init)
        // Only a well-formed event is kept to replay over a re-read: a malformed one is counted
        // once, here, never again by the replay.
        guard apply(p), let heard = heardDuringRefresh else { return }
        if heard.count < Self.heardDuringRefreshCap { heardDuringRefresh?.append(p) } else { refreshAgain = true }
    }

    /// Applies a state event; false when it was malformed or of an unknown kind (nothing applied).
    @discardableResult
    private func apply(_ p: [String]) -> Bool {
        switch (p.first, p.count) {
        case ("pj", 5):
            guard Self.isChannel(p[1]), UserID.isValid(p[2]), Role(rawValue: p[3]) != nil else { malformed(p); return false }
            presence.heardJoin(p[1], ClusterWire.user(p[2], info: p[3] + "\n" + p[4]))
        case ("pl", 3):
            guard Self.isChannel(p[1]), UserID.isValid(p[2]) else { malformed(p); return false }
            presence.heardLeave(p[1], p[2])
        case ("on", 3):
            guard UserID.isValid(p[1]), let role = Role(rawValue: p[2]) else { malformed(p); return false }
            online.heardOnline(p[1], role: role)
        case ("off", 2):
            guard UserID.isValid(p[1]) else { malformed(p); return false }
            online.heardOffline(p[1])
        case ("st", 3):
            guard UserID.isValid(p[1]), Vocabulary.presenceStatuses.contains(p[2]) else { malformed(p); return false }
            presence.heardStatus(p[1], p[2])
        case ("as", 5):
            guard NodeID.isValid(p[1]), UserID.isValid(p[2]), UserID.isValid(p[3]),
                  p[4].isEmpty || UserID.isValid(p[4]) else { malformed(p); return false }
            assignments.heard(origin: p[1], ConversationKey(service: p[2], clientId: p[3]), agent: p[4].isEmpty ? nil : p[4])
        case ("rl", 2):
            guard NodeID.isValid(p[1]) else { malformed(p); return false }
            if p[1] != nodeID { assignments.reload() }
        case (let kind?, _) where Self.knownKinds.contains(kind):
            malformed(p) // a known kind with the wrong number of parts
            return false
        default:
            // Logged once per kind (a newer node's events would otherwise log on every one).
            let kind = String((p.first ?? "").prefix(16))
            if unknownKindsLogged.count < 64, unknownKindsLogged.insert(kind).inserted {
                Log.info("cluster_event_unknown", ["event": String(p.joined(separator: " ").prefix(40))])
            }
            return false
        }
        return true
    }

    private static let knownKinds: Set<String> = ["pj", "pl", "on", "off", "st", "as", "rl"]

    /// Presence lives on conversation and user channels: `conv:`/`user:` and then ids and colons.
    private static func isChannel(_ name: String) -> Bool {
        (name.hasPrefix("conv:") || name.hasPrefix("user:")) && name.utf8.count <= 160
            && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    private func malformed(_ p: [String]) {
        counters.malformedEvents.add(1, ordering: .relaxed)
        if counters.malformedEvents.load(ordering: .relaxed) & 1023 == 1 {
            Log.info("cluster_event_malformed", ["event": String(p.joined(separator: " ").prefix(60))])
        }
    }

    // MARK: repair

    /// The heartbeat's answer runs the resync.
    private func commandsUp() {
        counters.redisUp.store(true, ordering: .relaxed)
        // First on the new connection, so that later EVALSHAs find the scripts even after
        // Redis restarted empty.
        for script in ClusterScript.all { commands.send(["SCRIPT", "LOAD", script.source], nil) }
        wire.resyncWanted.store(true, ordering: .relaxed)
        heartbeat()
    }

    /// Rewrites this node's share of Redis from local state, and reloads assignments.
    func resync() {
        guard running else { return }
        wire.resyncWanted.store(false, ordering: .relaxed)
        counters.resyncs.add(1, ordering: .relaxed)
        for script in ClusterScript.all { commands.send(["SCRIPT", "LOAD", script.source], nil) }
        commands.send(["HKEYS", keys.nodeChannels(nodeID)]) { [self] r in
            guard case .success(let v) = r else { return wire.resyncWanted.store(true, ordering: .relaxed) }
            // Taken now, on the loop, right before the syncs are sent: a join or leave counted
            // locally but not sent yet is still in the loop's mailbox, goes after the sync, and
            // finds its work done (both are idempotent per node), so nothing is announced twice.
            let channels = presence.local.channelsSnapshot()
            for channel in Set(v.strings).union(channels.keys) {
                var args = [nodeID, channel, keys.state]
                for m in channels[channel] ?? [] { args += [m.id, m.role.rawValue + "\n" + m.name] }
                evalHere(ClusterScripts.presenceSync, keys: [keys.presence(channel), keys.nodeChannels(nodeID)], args: args) { [self] r in
                    guard case .success(let v) = r else { return wire.resyncWanted.store(true, ordering: .relaxed) }
                    let out = v.strings
                    for i in stride(from: 0, to: out.count - 2, by: 3) {
                        wire.publishMembership(out[i] == "j" ? "join" : "leave", channel, ClusterWire.user(out[i + 1], info: out[i + 2]))
                    }
                }
            }
        }
        var args = [nodeID, keys.state]
        for e in online.countsToSync() { args += [e.id, String(e.count), e.role.rawValue] }
        evalHere(ClusterScripts.onlineSync, keys: [keys.online], args: args) { [self] r in
            if case .failure = r { wire.resyncWanted.store(true, ordering: .relaxed) }
        }
        assignments.reload()
        if wire.assignmentsUnsent.exchange(false, ordering: .relaxed) {
            commands.send(["PUBLISH", keys.state, "rl\n" + nodeID]) { [self] r in
                if case .failure = r {
                    wire.assignmentsUnsent.store(true, ordering: .relaxed)
                    wire.resyncWanted.store(true, ordering: .relaxed)
                }
            }
        }
    }

    /// Re-reads the online hash and every presence hash into the mirrors.
    func refreshMirrors() {
        guard running else { return }
        // One re-read at a time (a stuck one, past 30 s, is abandoned): asked again meanwhile,
        // another follows it, so a steady stream of triggers cannot keep restarting it.
        if refreshPartsLeft > 0 && loop.now - refreshStartedAt < 30_000 {
            refreshAgain = true
            return
        }
        refreshStartedAt = loop.now
        refreshAgain = false
        mirrorGeneration += 1
        counters.mirrorReads.add(1, ordering: .relaxed)
        let generation = mirrorGeneration
        if heardDuringRefresh == nil { heardDuringRefresh = [] }
        refreshPartsLeft = 2
        commands.send(["HGETALL", keys.online]) { [self] r in
            guard generation == mirrorGeneration else { return }
            guard case .success(let v) = r else { return refreshPartDone(nil) }
            let flat = v.strings
            var users: [String: Role] = [:]
            for i in stride(from: 0, to: flat.count - 1, by: 2) where flat[i].hasPrefix("r|") {
                users[String(flat[i].dropFirst(2))] = Role(rawValue: flat[i + 1]) ?? .client
            }
            online.replaceMirror(users)
            refreshPartDone { ["on", "off"].contains($0) }
        }
        scanPresence(cursor: "0", generation: generation, into: PresenceScan())
    }

    private final class PresenceScan {
        var channels: [String: [String: Presence.Member]] = [:]
    }

    private func scanPresence(cursor: String, generation: Int, into scan: PresenceScan) {
        commands.send(["SCAN", cursor, "MATCH", keys.presencePattern, "COUNT", "500"]) { [self] r in
            guard generation == mirrorGeneration else { return }
            guard case .success(let v) = r, let parts = v.elements, parts.count == 2 else { return refreshPartDone(nil) }
            let next = parts[0].string ?? "0"
            let found = parts[1].strings
            let finish = { [self] in
                guard generation == mirrorGeneration else { return }
                if next == "0" {
                    presence.replaceMirror(scan.channels)
                    refreshPartDone { ["pj", "pl"].contains($0) }
                } else { scanPresence(cursor: next, generation: generation, into: scan) }
            }
            guard !found.isEmpty else { return finish() }
            let prefixLength = keys.presence("").count
            for (i, key) in found.enumerated() {
                commands.send(["HGETALL", key]) { r in
                    if case .success(let v) = r {
                        let members = Self.members(v.strings)
                        if !members.isEmpty { scan.channels[String(key.dropFirst(prefixLength))] = members }
                    }
                    if i == found.count - 1 { finish() }
                }
            }
        }
    }

    /// One part of a re-read is in (or failed: nil): the events heard meanwhile that it may
    /// predate are applied again, in order (each is idempotent).
    private func refreshPartDone(_ replays: ((String) -> Bool)?) {
        if let replays, let heard = heardDuringRefresh {
            for p in heard where p.first.map(replays) == true { apply(p) }
        }
        refreshPartsLeft -= 1
        guard refreshPartsLeft <= 0 else { return }
        heardDuringRefresh = nil
        if refreshAgain { refreshMirrors() }
    }

    /// The members of one presence hash (flat field, value list).
    static func members(_ flat: [String]) -> [String: Presence.Member] {
        var nodes: [String: Int] = [:], info: [String: String] = [:]
        for i in stride(from: 0, to: flat.count - 1, by: 2) {
            let f = flat[i]
            if f.hasPrefix("u|") { nodes[String(f.dropFirst(2))] = Int(flat[i + 1]) ?? 0 }
            if f.hasPrefix("i|") { info[String(f.dropFirst(2))] = flat[i + 1] }
        }
        var out: [String: Presence.Member] = [:]
        for (id, n) in nodes where n > 0 {
            let u = ClusterWire.user(id, info: info[id] ?? "")
            out[id] = Presence.Member(id: id, role: u.role, name: u.name, connections: n)
        }
        return out
    }

    func evalHere(_ script: ClusterScript, keys: [String], args: [String], _ completion: @escaping RedisConnection.Completion) {
        wire.evalHere(script, keys: keys, args: args, completion)
    }
}

/// Counts of what a node's cluster state did (each only grows).
final class ClusterCounters: Sendable {
    let resyncs = Atomic<Int>(0)
    let mirrorReads = Atomic<Int>(0)
    let reapedNodes = Atomic<Int>(0)
    let reapedLeaves = Atomic<Int>(0)
    /// State-channel events refused: a known kind with bad ids, role, status or channel.
    let malformedEvents = Atomic<Int>(0)
    /// Whether the commands connection is up now (for health checks).
    let redisUp = Atomic<Bool>(false)

    /// For the hub's stats, by metric-style name.
    var values: [String: Int] {
        ["cluster_resyncs": resyncs.load(ordering: .relaxed), "cluster_mirror_reads": mirrorReads.load(ordering: .relaxed),
         "cluster_reaped_nodes": reapedNodes.load(ordering: .relaxed), "cluster_reaped_leaves": reapedLeaves.load(ordering: .relaxed),
         "cluster_events_malformed": malformedEvents.load(ordering: .relaxed),
         "cluster_redis_up": redisUp.load(ordering: .relaxed) ? 1 : 0]
    }
}

enum ClusterStateError: Error, Equatable {
    case noEndpoint
    case invalidNodeID(String)
}

extension ClusterState {
    /// Wires the hooks to a built ChatService (made with this state's registries): decisions
    /// are published through its broker, revokes go to its Router (this node's subscribers;
    /// each node revokes its own).
    func wire(to chat: ChatService) {
        let broker = chat.broker, router = chat.router
        wire(membership: { kind, channel, user in broker.publish(.membership(kind, channel, user)) },
             revoke: { channel, user in router.revoke(channel, user: user) })
    }

    /// Reads every assignment from `store` (for `loadAssignments`); nil on a store error.
    static func assignmentLoader(_ store: Store) -> ClusterAssignments.Load {
        { done in store.allAssignments { done(try? $0.get()) } }
    }
}
