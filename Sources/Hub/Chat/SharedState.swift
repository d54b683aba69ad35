import Persistence
import Protocol

// State every node of a cluster must agree on, behind interfaces a cluster implementation can
// back. The classes in this folder (Presence, OnlineUsers, Directory) are the single-node
// implementations: in memory, one lock each; Cluster/ holds the Redis-backed ones, which wrap
// them (ClusterState builds all three). Every method may be called from any loop thread
// and must not block on the network: a distributed implementation answers from a local copy
// and updates the shared one in the background.

/// Who is in which conversation (by user, not by connection), availability, and the typing rate.
protocol PresenceRegistry: Sendable {
    /// Counts a connection in; true when it is the user's first in the channel (a `join` push).
    func join(_ channel: String, _ user: SessionUser) -> Bool
    /// Counts a connection out; true when it was the user's last in the channel (a `leave` push).
    func leave(_ channel: String, _ userID: String) -> Bool
    func isPresent(_ channel: String, _ userID: String) -> Bool
    /// The members in a channel, sorted by id, each with their status.
    func online(_ channel: String) -> [(member: Presence.Member, status: String)]
    func setStatus(_ userID: String, _ status: String)
    /// Whether a typing push may go out now for this user and channel.
    func allowTyping(_ userID: String, _ channel: String, now: Int64) -> Bool
}

/// Who has an authenticated connection, by user and by role.
protocol OnlineRegistry: Sendable {
    /// Counts the connection in, unless the user already holds `limit` (false then).
    func connected(_ user: SessionUser, limit: Int) -> Bool
    /// The same, for an implementation that learns later that other nodes already hold
    /// `limit` of the user's connections: true now, then `overLimitElsewhere` runs once
    /// (on any thread) and the caller closes the connection as if refused.
    func connected(_ user: SessionUser, limit: Int, overLimitElsewhere: @escaping @Sendable () -> Void) -> Bool
    func disconnected(_ user: SessionUser)
    func isOnline(_ id: String) -> Bool
    /// Users online in a broadcast audience: "all" or a role.
    func count(in audience: String) -> Int
    /// Whether any user of these roles is online (asked on a client's send to an unassigned
    /// conversation: is anyone there to take it?).
    func anyOnline(_ roles: [Role]) -> Bool
    /// Users online, by role name (stats).
    var byRole: [String: Int] { get }
    /// The users online now, as a value: taken when a fan-out chunk is submitted, so a store
    /// transaction never calls back into hub state.
    func snapshot() -> Set<String>
}

/// Which agent serves which conversation: read on every op for authorization, written when an
/// assignment changes.
protocol AssignmentDirectory: Sendable {
    func load(_ list: [Assignment])
    func agent(for key: ConversationKey) -> String?
    func setAgent(_ agent: String?, for key: ConversationKey)
    func allConversations() -> [ConversationKey]
    func conversations(ofAgent agent: String) -> [ConversationKey]
}

extension OnlineRegistry {
    /// One node: the answer now is the whole answer.
    func connected(_ user: SessionUser, limit: Int, overLimitElsewhere: @escaping @Sendable () -> Void) -> Bool {
        connected(user, limit: limit)
    }
}

extension Presence: PresenceRegistry {}
extension OnlineUsers: OnlineRegistry {}
extension Directory: AssignmentDirectory {}
