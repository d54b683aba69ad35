import Core
import Protocol
import Synchronization

// Who has an authenticated connection right now, by user (a user with three tabs counts
// once) and by role: for notification decisions (is this user online?), broadcast counts and
// stats. Changed on auth and close only, so one lock is enough.
final class OnlineUsers: Sendable {
    private struct State {
        var connections: [String: (role: Role, count: Int)] = [:]
        /// The keys of `connections`, kept as a set so that `snapshot` hands it out as it is.
        var users = Set<String>()
        var byRole: [Role: Int] = [:]
    }
    private let state = Locked(State())

    /// Counts the connection in, unless the user already holds `limit` (false then).
    func connected(_ user: SessionUser, limit: Int = Int.max) -> Bool {
        state.withLock { s in
            if let e = s.connections[user.id] {
                guard e.count < limit else { return false }
                s.connections[user.id] = (e.role, e.count + 1)
            } else {
                s.connections[user.id] = (user.role, 1)
                s.users.insert(user.id)
                s.byRole[user.role, default: 0] += 1
            }
            return true
        }
    }

    func disconnected(_ user: SessionUser) {
        state.withLock { s in
            guard let e = s.connections[user.id] else { return }
            if e.count > 1 {
                s.connections[user.id] = (e.role, e.count - 1)
            } else {
                s.connections[user.id] = nil
                s.users.remove(user.id)
                s.byRole[e.role, default: 1] -= 1
            }
        }
    }

    /// Every user connected here, with their role and number of connections.
    func entries() -> [(id: String, role: Role, count: Int)] {
        state.withLock { s in s.connections.map { ($0.key, $0.value.role, $0.value.count) } }
    }

    func isOnline(_ id: String) -> Bool { state.withLock { $0.connections[id] != nil } }

    /// Every user online now, as a value for work that must not call back in (a fan-out chunk
    /// in a store transaction). Copy-on-write: taking it copies nothing; the first connect or
    /// disconnect while a holder keeps it copies the set once.
    func snapshot() -> Set<String> { state.withLock { $0.users } }

    /// Users online in a broadcast audience: 'all' or a role.
    func count(in audience: String) -> Int {
        state.withLock { s in
            if audience == "all" { return s.connections.count }
            guard let role = Role(rawValue: audience) else { return 0 }
            return s.byRole[role] ?? 0
        }
    }

    /// Whether any user of these roles is online.
    func anyOnline(_ roles: [Role]) -> Bool {
        state.withLock { s in roles.contains { (s.byRole[$0] ?? 0) > 0 } }
    }

    var byRole: [String: Int] {
        state.withLock { s in Dictionary(uniqueKeysWithValues: s.byRole.map { ($0.key.rawValue, $0.value) }) }
    }
}
