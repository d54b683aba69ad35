import Core
import Persistence
import Protocol
import Synchronization

// Assignments across nodes. Reads answer from the local `Directory` (every op authorizes
// through it). A change on this node is applied here at once and sent as an `as` event on the
// state channel; every other node applies it on arrival and revokes, on this node, the
// subscriptions of the agent who lost the conversation. Pub/sub may lose the event, so after
// every reconnect to Redis (and at start) the node reloads the assignments from the store
// (the truth) and revokes every subscription that lost access; and a node whose own event
// could not be sent tells every node to reload (`rl`) once its connection is back. A reload that raced with an
// event heard meanwhile is run again, so an older read never undoes a newer change.
final class ClusterAssignments: AssignmentDirectory {
    /// Reads every assignment from the store; nil when the store could not answer.
    typealias Load = @Sendable (_ completion: @escaping @Sendable ([Assignment]?) -> Void) -> Void

    let local: Directory
    private let wire: ClusterWire
    private let loadFromStore: Load
    /// Bumped by every change heard: a reload that saw it move reads again.
    private let changes = Atomic<Int>(0)

    init(local: Directory, wire: ClusterWire, load: @escaping Load) {
        self.local = local
        self.wire = wire
        self.loadFromStore = load
    }

    func load(_ list: [Assignment]) { local.load(list) }
    func agent(for key: ConversationKey) -> String? { local.agent(for: key) }
    func allConversations() -> [ConversationKey] { local.allConversations() }
    func conversations(ofAgent agent: String) -> [ConversationKey] { local.conversations(ofAgent: agent) }

    func setAgent(_ agent: String?, for key: ConversationKey) {
        local.setAgent(agent, for: key)
        changes.add(1, ordering: .relaxed)
        let wire = self.wire
        let event = "as\n\(wire.nodeID)\n\(key.service)\n\(key.clientId)\n\(agent ?? "")"
        wire.send(["PUBLISH", wire.keys.state, event]) { r in
            // Lost: once Redis is back, every node is told to reload from the store.
            if case .failure = r { wire.assignmentsUnsent.store(true, ordering: .relaxed) }
        }
    }

    // MARK: fed by ClusterState

    /// Another node changed an assignment.
    func heard(origin: String, _ key: ConversationKey, agent: String?) {
        guard origin != wire.nodeID else { return }
        changes.add(1, ordering: .relaxed)
        let previous = local.agent(for: key)
        local.setAgent(agent, for: key)
        if let previous, previous != agent { wire.revoke(key.channel, user: previous) }
    }

    /// Reads the assignments from the store and makes the directory equal to them.
    func reload(attempt: Int = 0) {
        let seen = changes.load(ordering: .relaxed)
        loadFromStore { [self] list in
            guard let list else {
                Log.error("cluster_assignments_reload_failed", ["attempt": "\(attempt)"])
                wire.resyncWanted.store(true, ordering: .relaxed) // tried again with the next heartbeat
                return
            }
            // An event arrived while the store was read: this answer may predate it.
            if changes.load(ordering: .relaxed) != seen && attempt < 3 { return reload(attempt: attempt + 1) }
            for (key, lost) in local.replace(with: list) where local.agent(for: key) != lost {
                wire.revoke(key.channel, user: lost)
            }
        }
    }
}
