import Core
import Protocol

// Node liveness: one key per node with a TTL, renewed by a heartbeat, plus the sorted set of
// nodes the janitor watches (score: last heartbeat, for operators). Per node, not per member:
// a heartbeat is two commands whatever the node holds. The janitor runs on whichever node
// holds its lease (SET NX PX, renewed every tick by the holder); each tick it lists the nodes
// whose key is gone and reaps each in one Lua script (which does nothing if the node beat
// again meanwhile), publishing a `leave` for every user that was only on that node.
//
// Bound: a node that stops beating at T has its key expire by T + nodeTTLMs; the janitor
// sees it within janitorMs (a janitor that died itself loses its lease within leaseMs ≤
// nodeTTLMs, and the next holder takes over on its next tick). A user who reconnects to
// another node before that is counted there first, so the reap removes a field but not the
// user: no `leave`, no `join`.
extension ClusterState {
    /// Renews this node's key; a key found gone means the janitor may have reaped this node
    /// (it stalled past the TTL), so its share of Redis is rewritten.
    func heartbeat() {
        guard running, commands.isUp else { return }
        let now = String(wallMillis())
        commands.send(["SET", keys.node(nodeID), now, "PX", String(timing.nodeTTLMs), "GET"]) { [weak self] r in
            guard let self, case .success(let v) = r else { return }
            if v == .null { self.wire.resyncWanted.store(true, ordering: .relaxed) }
            if self.wire.resyncWanted.load(ordering: .relaxed) { self.resync() }
        }
        commands.send(["ZADD", keys.nodes, now, nodeID], nil)
        if !events.takeDroppedChannels().isEmpty { refreshMirrors() }
    }

    func janitorTick() {
        guard running, commands.isUp else { return }
        evalHere(ClusterScripts.lease, keys: [keys.janitor], args: [nodeID, String(timing.leaseMs)]) { [weak self] r in
            guard let self, self.running, case .success(.integer(1)) = r else { return }
            self.evalHere(ClusterScripts.deadNodes, keys: [self.keys.nodes], args: [self.keys.prefix]) { [weak self] r in
                guard let self, case .success(let v) = r else { return }
                for node in v.strings where node != self.nodeID {
                    self.reap(node) { [weak self] leaves in
                        guard let self, let leaves else { return }
                        self.counters.reapedNodes.add(1, ordering: .relaxed)
                        self.counters.reapedLeaves.add(leaves, ordering: .relaxed)
                        Log.info("cluster_node_reaped", ["node": node, "by": self.nodeID, "leaves": "\(leaves)"])
                    }
                }
            }
        }
    }

    /// Removes `node`'s members and online counts (unless its key is back) and publishes the
    /// `leave`s; `done` gets how many, or nil when Redis did not answer.
    func reap(_ node: String, done: @escaping (Int?) -> Void) {
        evalHere(ClusterScripts.reap, keys: [keys.nodeChannels(node), keys.online, keys.nodes, keys.node(node)],
                 args: [node, keys.prefix, keys.state]) { [weak self] r in
            guard let self, case .success(let v) = r else { return done(nil) }
            let out = v.strings
            for i in stride(from: 0, to: out.count - 2, by: 3) {
                self.wire.publishMembership("leave", out[i], ClusterWire.user(out[i + 1], info: out[i + 2]))
            }
            done(out.count / 3)
        }
    }
}
