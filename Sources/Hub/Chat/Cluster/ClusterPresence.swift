import Core
import Protocol

// Presence across nodes. This node's connections are counted in a local `Presence` (the
// single-node class, unchanged); only this node's transitions (its first connection of a user
// in a channel, its last) go to Redis, where a Lua script counts nodes per user and decides
// "first anywhere" / "last anywhere" atomically. The node that gets that answer publishes the
// `join` / `leave` through the hooks, so `join`/`leave` here always return false (the caller
// publishes nothing itself): exactly one node publishes each change, one Redis round trip
// after it happened.
//
// Reads never touch the network: `online` and `isPresent` answer from this node's members
// plus a mirror of every channel's members cluster-wide, kept by the `pj`/`pl` events the
// scripts publish and re-read in full after every reconnect of the event connection and
// periodically (ClusterState). A mirror of every channel, rather than of channels this node
// subscribes: the `presence` op may ask about any channel the user may see, and an answer
// must not wait for Redis; the cost is one small event per cluster-wide join/leave per node.
//
// Redis unreachable: the local decision stands (first/last on this node publishes), and the
// node rewrites its share of Redis from local state when the connection is back; a change
// decided locally during the outage may then be announced once more to this node's watchers.
// Status: set locally and sent as an `st` event, so every node's `presence` answer shows it
// (pub/sub only, no key). Typing: `allowTyping` stays per node (a user typing on two nodes
// may get one push per node per interval).
final class ClusterPresence: PresenceRegistry {
    let local = Presence()
    private let wire: ClusterWire
    /// channel → user → member, cluster-wide, as last heard from Redis.
    private let mirror = Locked<[String: [String: Presence.Member]]>([:])

    init(wire: ClusterWire) { self.wire = wire }

    func join(_ channel: String, _ user: SessionUser) -> Bool {
        guard local.join(channel, user) else { return false }
        let wire = self.wire
        let k = wire.keys
        wire.eval(ClusterScripts.presenceJoin, keys: [k.presence(channel), k.nodeChannels(wire.nodeID)],
                  args: [wire.nodeID, user.id, ClusterWire.info(user), channel, k.state]) { r in
            switch r {
            case .success(let v):
                if v.integer == 1 { wire.publishMembership("join", channel, user) }
            case .failure(.closed):
                break // this node is stopping: its stop removes its share and publishes the leaves once
            case .failure:
                wire.resyncWanted.store(true, ordering: .relaxed)
                wire.publishMembership("join", channel, user)
            }
        }
        return false
    }

    func leave(_ channel: String, _ userID: String) -> Bool {
        let member = local.member(channel, userID)
        guard local.leave(channel, userID), let member else { return false }
        let user = SessionUser(id: member.id, role: member.role, name: member.name, services: nil)
        let wire = self.wire
        let k = wire.keys
        wire.eval(ClusterScripts.presenceLeave, keys: [k.presence(channel), k.nodeChannels(wire.nodeID)],
                  args: [wire.nodeID, userID, channel, k.state]) { r in
            switch r {
            case .success(let v):
                if v.integer == 1 { wire.publishMembership("leave", channel, user) }
            case .failure(.closed):
                break // this node is stopping: its stop removes its share and publishes the leaves once
            case .failure:
                wire.resyncWanted.store(true, ordering: .relaxed)
                wire.publishMembership("leave", channel, user)
            }
        }
        return false
    }

    func isPresent(_ channel: String, _ userID: String) -> Bool {
        local.isPresent(channel, userID) || mirror.withLock { $0[channel]?[userID] != nil }
    }

    func online(_ channel: String) -> [(member: Presence.Member, status: String)] {
        local.online(channel, adding: mirror.withLock { $0[channel] ?? [:] })
    }

    func setStatus(_ userID: String, _ status: String) {
        local.setStatus(userID, status)
        wire.fireAndForget(["PUBLISH", wire.keys.state, "st\n\(userID)\n\(status)"])
    }

    func allowTyping(_ userID: String, _ channel: String, now: Int64) -> Bool {
        local.allowTyping(userID, channel, now: now)
    }

    // MARK: fed by ClusterState

    func heardJoin(_ channel: String, _ user: SessionUser) {
        mirror.withLock { $0[channel, default: [:]][user.id] = Presence.Member(id: user.id, role: user.role, name: user.name, connections: 1) }
    }

    func heardLeave(_ channel: String, _ userID: String) {
        mirror.withLock { m in
            m[channel]?[userID] = nil
            if m[channel]?.isEmpty == true { m[channel] = nil }
        }
    }

    func heardStatus(_ userID: String, _ status: String) { local.setStatus(userID, status) }

    /// A full re-read replaces the mirror.
    func replaceMirror(_ channels: [String: [String: Presence.Member]]) {
        mirror.withLock { $0 = channels }
    }
}
