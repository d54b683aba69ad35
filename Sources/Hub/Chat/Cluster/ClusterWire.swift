import Core
import Protocol
import Synchronization

// What the cluster registries share: the node's id, the key names, the one commands
// connection to Redis (owned by `loop`), and the hooks into the hub. Any thread may call it;
// every command is handed to the loop, whose connection answers on the loop. A command that
// fails (Redis down, connection lost) never blocks anyone: the caller falls back to its local
// answer and `resyncWanted` asks ClusterState to rewrite this node's share of Redis from local
// state once the connection is back.
//
// `@unchecked Sendable`: `commands` is used only on `loop`'s thread; the rest is immutable or locked.
final class ClusterWire: @unchecked Sendable {
    /// What the hub does with a decision made here.
    struct Hooks: Sendable {
        /// Publish a `join` or `leave` (kind) in a channel for a user (wired to the broker).
        var membership: @Sendable (_ kind: String, _ channel: String, _ user: SessionUser) -> Void = { _, _, _ in }
        /// End `user`'s subscriptions to `channel` on this node (wired to the Router).
        var revoke: @Sendable (_ channel: String, _ user: String) -> Void = { _, _ in }
    }

    let nodeID: String
    let keys: ClusterKeys
    let loop: EventLoop
    let commands: RedisConnection
    let hooks = Locked(Hooks())
    let resyncWanted = Atomic<Bool>(false)
    /// An assignment event of this node could not be sent: other nodes must reload.
    let assignmentsUnsent = Atomic<Bool>(false)

    init(nodeID: String, keys: ClusterKeys, loop: EventLoop, commands: RedisConnection) {
        self.nodeID = nodeID
        self.keys = keys
        self.loop = loop
        self.commands = commands
    }

    /// Runs `script` in Redis; `completion` runs on the loop.
    func eval(_ script: ClusterScript, keys: [String], args: [String],
              _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void) {
        loop.execute { [self] _ in evalHere(script, keys: keys, args: args) { completion($0) } }
    }

    /// The same, from the loop thread.
    func evalHere(_ script: ClusterScript, keys: [String], args: [String], _ completion: @escaping RedisConnection.Completion) {
        commands.send(["EVALSHA", script.sha, String(keys.count)] + keys + args) { [self] r in
            if case .failure(.server(let m)) = r {
                Log.error("cluster_script_failed", ["reason": String(m.prefix(200))])
                resyncWanted.store(true, ordering: .relaxed)
            }
            completion(r)
        }
    }

    /// Sends a command; `completion` runs on the loop.
    func send(_ command: [String], _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void) {
        let commands = self.commands
        loop.execute { _ in commands.send(command) { completion($0) } }
    }

    /// Sends a command whose answer nobody waits for (events on the state channel).
    func fireAndForget(_ command: [String]) {
        let commands = self.commands
        loop.execute { _ in commands.send(command, nil) }
    }

    func publishMembership(_ kind: String, _ channel: String, _ user: SessionUser) {
        hooks.withLock { $0.membership }(kind, channel, user)
    }

    func revoke(_ channel: String, user: String) {
        hooks.withLock { $0.revoke }(channel, user)
    }

    /// A user from a presence hash's "role\nname" info.
    static func user(_ id: String, info: String) -> SessionUser {
        let parts = info.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        let role = parts.first.flatMap { Role(rawValue: String($0)) } ?? .client
        return SessionUser(id: id, role: role, name: parts.count > 1 ? String(parts[1]) : id, services: nil)
    }

    static func info(_ user: SessionUser) -> String { user.role.rawValue + "\n" + user.name }
}

/// The Redis names of one cluster, all under `<cluster-name>:` (tests use a random name each,
/// so clusters sharing one Redis never see each other's keys or events).
struct ClusterKeys: Sendable {
    let prefix: String

    init(clusterName: String) { prefix = clusterName + ":" }

    var state: String { prefix + "state" }
    var online: String { prefix + "online" }
    var nodes: String { prefix + "nodes" }
    var janitor: String { prefix + "janitor" }
    func presence(_ channel: String) -> String { prefix + "p:" + channel }
    func nodeChannels(_ node: String) -> String { prefix + "nchans:" + node }
    func node(_ node: String) -> String { prefix + "node:" + node }
    /// A SCAN pattern for every presence hash (the prefix's glob characters escaped).
    var presencePattern: String {
        var escaped = ""
        for ch in prefix + "p:" {
            if "*?[]\\".contains(ch) { escaped.append("\\") }
            escaped.append(ch)
        }
        return escaped + "*"
    }
}

extension RESPValue {
    /// The strings of an array reply (non-strings skipped).
    var strings: [String] { (elements ?? []).compactMap(\.string) }
}
