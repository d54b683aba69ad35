import Core
import Protocol

// Who is online across nodes. This node's connections are counted in a local `OnlineUsers`
// (the single-node class); every connect and disconnect is also counted in Redis (`online`
// hash, per node and in total) by a Lua script that publishes `on`/`off` when a user's total
// crosses zero. Reads (`isOnline`, `count(in:)`, `snapshot`, `byRole`) answer from local
// state plus a mirror kept by those events and re-read in full after every reconnect and
// periodically; they never wait for Redis.
//
// The per-user connection limit: the local check refuses at once, as on one node. Past it,
// the script counts the connection and answers the user's total before it; at or over the
// limit `overLimitElsewhere` runs (one Redis round trip after auth) and the session closes
// the connection. A refused connection is counted like any other, so its close is an
// ordinary disconnect. Redis unreachable: the local answer stands, and the node rewrites its
// counts in Redis when the connection is back.
final class ClusterOnline: OnlineRegistry {
    let local = OnlineUsers()
    private let wire: ClusterWire
    /// Who is online cluster-wide, as last heard from Redis; `users` is `roles.keys` kept as a
    /// set, so that `snapshot` hands it out without building one.
    private struct Mirror {
        var roles: [String: Role] = [:]
        var users = Set<String>()
        /// How many of `roles` hold each role: a client's send asks whether any staff is online,
        /// which must not copy every user online.
        var perRole: [Role: Int] = [:]

        init(_ roles: [String: Role] = [:]) {
            self.roles = roles
            users = Set(roles.keys)
            for role in roles.values { perRole[role, default: 0] += 1 }
        }

        /// `id` online with `role`, or offline (nil).
        mutating func set(_ id: String, _ role: Role?) {
            if let old = roles[id] { perRole[old, default: 1] -= 1 }
            roles[id] = role
            if let role {
                perRole[role, default: 0] += 1
                users.insert(id)
            } else {
                users.remove(id)
            }
        }
    }
    private let mirror = Locked(Mirror())
    /// Per user, the connects minus disconnects counted locally whose script has not been
    /// sent yet (still in the loop's mailbox). A resync writes the local counts minus these,
    /// so the scripts that follow it land on the right totals. Taken before `local`'s lock.
    private let unsent = Locked<[String: Int]>([:])

    init(wire: ClusterWire) { self.wire = wire }

    func connected(_ user: SessionUser, limit: Int) -> Bool {
        connected(user, limit: limit, overLimitElsewhere: {})
    }

    func connected(_ user: SessionUser, limit: Int, overLimitElsewhere: @escaping @Sendable () -> Void) -> Bool {
        let local = self.local
        guard unsent.withLock({ u in
            guard local.connected(user, limit: limit) else { return false }
            u[user.id, default: 0] += 1
            return true
        }) else { return false }
        let wire = self.wire
        send(user.id, delta: 1, ClusterScripts.onlineConnect, args: [wire.nodeID, user.id, user.role.rawValue, wire.keys.state]) { r in
            switch r {
            case .success(let v):
                if let before = v.integer, before >= Int64(clamping: limit) {
                    Log.info("user_connection_limit_cluster", ["user": user.id, "limit": "\(limit)", "held": "\(before)"])
                    overLimitElsewhere()
                }
            case .failure:
                wire.resyncWanted.store(true, ordering: .relaxed)
            }
        }
        return true
    }

    func disconnected(_ user: SessionUser) {
        let local = self.local
        unsent.withLock { u in
            local.disconnected(user)
            u[user.id, default: 0] -= 1
        }
        let wire = self.wire
        send(user.id, delta: -1, ClusterScripts.onlineDisconnect, args: [wire.nodeID, user.id, wire.keys.state]) { r in
            if case .failure = r { wire.resyncWanted.store(true, ordering: .relaxed) }
        }
    }

    /// Sends a counting script from the loop, taking its delta out of `unsent` as it goes.
    private func send(_ userID: String, delta: Int, _ script: ClusterScript, args: [String],
                      _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void) {
        let wire = self.wire, unsent = self.unsent
        wire.loop.execute { _ in
            unsent.withLock { u in
                let left = (u[userID] ?? 0) - delta
                u[userID] = left == 0 ? nil : left
            }
            wire.evalHere(script, keys: [wire.keys.online], args: args) { completion($0) }
        }
    }

    /// This node's connection counts as Redis should hold them before the scripts not sent yet.
    func countsToSync() -> [(id: String, role: Role, count: Int)] {
        let local = self.local
        return unsent.withLock { u in
            local.entries().compactMap { e in
                let n = e.count - (u[e.id] ?? 0)
                return n > 0 ? (e.id, e.role, n) : nil
            }
        }
    }

    func isOnline(_ id: String) -> Bool {
        local.isOnline(id) || mirror.withLock { $0.users.contains(id) }
    }

    func count(in audience: String) -> Int {
        let everyone = roles()
        if audience == "all" { return everyone.count }
        guard let role = Role(rawValue: audience) else { return 0 }
        return everyone.values.reduce(0) { $0 + ($1 == role ? 1 : 0) }
    }

    /// Online here or heard online from the others: the same users `roles()` joins, counted
    /// by role instead of copied.
    func anyOnline(_ wanted: [Role]) -> Bool {
        local.anyOnline(wanted) || mirror.withLock { m in wanted.contains { (m.perRole[$0] ?? 0) > 0 } }
    }

    var byRole: [String: Int] {
        var out: [String: Int] = [:]
        for role in roles().values { out[role.rawValue, default: 0] += 1 }
        return out
    }

    func snapshot() -> Set<String> {
        let here = local.snapshot()
        let there = mirror.withLock { $0.users }
        return there.isSuperset(of: here) ? there : there.union(here)
    }

    /// Every user online anywhere, with their role.
    private func roles() -> [String: Role] {
        var all = mirror.withLock { $0.roles }
        for e in local.entries() where all[e.id] == nil { all[e.id] = e.role }
        return all
    }

    // MARK: fed by ClusterState

    func heardOnline(_ id: String, role: Role) {
        mirror.withLock { $0.set(id, role) }
    }

    func heardOffline(_ id: String) {
        mirror.withLock { $0.set(id, nil) }
    }

    func replaceMirror(_ users: [String: Role]) {
        mirror.withLock { $0 = Mirror(users) }
    }
}
