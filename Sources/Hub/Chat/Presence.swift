import Core
import Protocol
import Synchronization

// Who is in which conversation, by user rather than by connection (a user's first connection
// in is a `join`, the last one out a `leave`, whichever loops they are on), agents' and
// admins' availability, and the typing rate limit. Shared by all loops behind one lock:
// it changes on subscribe/unsubscribe/close, not per message.
final class Presence: Sendable {
    struct Member: Sendable, Equatable {
        let id: String
        let role: Role
        let name: String
        var connections: Int
    }

    private struct State {
        var channels: [String: [String: Member]] = [:]
        var status: [String: String] = [:]
        var lastTyping: [String: Int64] = [:]
    }

    private let state = Locked(State())
    /// At most one typing push per user and channel in this window (docs/protocol.md `typing`).

    /// Counts a connection in; true when it is the user's first in the channel.
    ///
    /// Both counts change the tables in place, through indices: reading a member out through
    /// `channels[channel]?[id]` and storing it back copied the channel's table on every
    /// subscribe (three allocations a connect).
    func join(_ channel: String, _ user: SessionUser) -> Bool {
        state.withLock { s in
            Self.join(&s.channels[channel, default: [:]], user)
        }
    }

    private static func join(_ members: inout [String: Member], _ user: SessionUser) -> Bool {
        if let i = members.index(forKey: user.id) {
            members.values[i].connections += 1
            return false
        }
        members[user.id] = Member(id: user.id, role: user.role, name: user.name, connections: 1)
        return true
    }

    /// Counts a connection out; true when it was the user's last in the channel.
    func leave(_ channel: String, _ userID: String) -> Bool {
        state.withLock { s in
            guard let c = s.channels.index(forKey: channel) else { return false }
            guard Self.leave(&s.channels.values[c], userID) else { return false }
            if s.channels.values[c].isEmpty { s.channels.remove(at: c) }
            return true
        }
    }

    private static func leave(_ members: inout [String: Member], _ userID: String) -> Bool {
        guard let i = members.index(forKey: userID) else { return false }
        members.values[i].connections -= 1
        guard members.values[i].connections <= 0 else { return false }
        members.remove(at: i)
        return true
    }

    /// Whether the user has a connection joined to the channel.
    func isPresent(_ channel: String, _ userID: String) -> Bool {
        state.withLock { $0.channels[channel]?[userID] != nil }
    }

    func online(_ channel: String) -> [(member: Member, status: String)] {
        online(channel, adding: [:])
    }

    /// The channel's members here and `others` (members elsewhere, by id), sorted by id.
    func online(_ channel: String, adding others: [String: Member]) -> [(member: Member, status: String)] {
        state.withLock { s in
            let here = s.channels[channel] ?? [:]
            let all = others.isEmpty ? here : here.merging(others) { mine, _ in mine }
            return all.values.sorted { $0.id < $1.id }.map { m in
                (m, s.status[m.id] ?? (m.role == .client ? "online" : "available"))
            }
        }
    }

    /// The user's entry in the channel on this node, if joined.
    func member(_ channel: String, _ userID: String) -> Member? {
        state.withLock { $0.channels[channel]?[userID] }
    }

    /// Every channel with members on this node, and its members.
    func channelsSnapshot() -> [String: [Member]] {
        state.withLock { s in s.channels.mapValues { Array($0.values) } }
    }

    /// Statuses kept; past this, those of users joined nowhere here are dropped (they read as
    /// the default again). Below it a status outlives its user's channels, as before.
    static let statusCap = 100_000

    func setStatus(_ userID: String, _ status: String) {
        state.withLock { s in
            s.status[userID] = status
            guard s.status.count > Self.statusCap else { return }
            var present = Set<String>()
            for members in s.channels.values { present.formUnion(members.keys) }
            s.status = s.status.filter { present.contains($0.key) || $0.key == userID }
        }
    }

    var statusCount: Int { state.withLock { $0.status.count } }

    /// Whether a typing push may go out now for this user and channel.
    func allowTyping(_ userID: String, _ channel: String, now: Int64) -> Bool {
        state.withLock { s in
            let key = userID + "\u{0}" + channel
            if let last = s.lastTyping[key], now - last < ContractLimits.typingIntervalMs { return false }
            s.lastTyping[key] = now
            if s.lastTyping.count > 100_000 { s.lastTyping = s.lastTyping.filter { now - $0.value < ContractLimits.typingIntervalMs } }
            return true
        }
    }
}
