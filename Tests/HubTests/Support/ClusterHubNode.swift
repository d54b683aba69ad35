import Core
import Foundation
import Notifications
import Persistence
import Protocol
import XCTest
@testable import Hub

/// A hub node in this process, made of the hub's own parts (loop, Router, ChatService with
/// the cluster registries, the public listener) over a store every node of the test shares,
/// and a broker that hands each publication to every node's Router: a stand-in for the Redis
/// broker, which another step builds. Sessions, auth, subscribe and close run as in the hub.
final class ClusterHubNode {
    let loop: EventLoop
    let state: ClusterState
    let chat: ChatService
    let listener: Listener
    var port: Int { listener.port }

    init(_ id: String, cluster: String, endpoint: RedisEndpoint, store: SQLiteStore, routers: Locked<[Router]>,
         chatLimits: ChatLimits = ChatLimits()) throws {
        let counters = EngineCounters()
        loop = try EventLoop(index: 0, counters: counters)
        let router = Router(loops: [loop])
        routers.withLock { $0.append(router) }
        let directory = Directory()
        if case .success(let list) = waitForStore({ store.allAssignments(completion: $0) }) { directory.load(list) }
        state = try ClusterState(endpoints: [endpoint], clusterName: cluster, nodeID: id, loop: loop, directory: directory,
                                 loadAssignments: ClusterState.assignmentLoader(store), timing: ClusterTestNode.fastTiming)
        let secret = Array(TestHub.secret.utf8)
        chat = ChatService(store: store, directory: state.assignments, router: router, broker: EveryNodeBroker(routers: routers),
                           verifier: JWTVerifier(secret: secret), limits: chatLimits, counters: counters,
                           presence: state.presence, online: state.online)
        state.wire(to: chat)
        listener = try Listener(name: "public", host: "127.0.0.1", port: 0,
                                service: PublicService(echoPath: nil, handshake: HandshakeOptions(), counters: counters, chat: chat,
                                                       console: ConsoleRoutes(dev: false, signer: JWTSigner(secret: secret))),
                                tls: nil, limits: EngineLimits())
        try loop.add(listener)
        loop.start()
        state.start()
        let state = self.state
        XCTAssertTrue(eventually { state.counters.redisUp.load(ordering: .relaxed) }, "expected node \(id) on Redis")
    }

    func client(_ user: String, _ role: Role) throws -> ChatClient {
        try ChatClient(port: port, token: TestHub.token(user, role))
    }

    func stop() {
        state.stopAndWait()
        loop.execute { $0.beginShutdown(deadlineMs: 500) }
        loop.waitUntilFinished()
    }
}

/// Every publication to every node's Router; revokes likewise.
struct EveryNodeBroker: Broker {
    let routers: Locked<[Router]>
    func publish(_ p: Publication) { for r in routers.withLock({ $0 }) { r.deliver(p) } }
    func revoke(_ channel: String, user: String) { for r in routers.withLock({ $0 }) { r.revoke(channel, user: user) } }
    func hasInterest(_ channel: String) -> Bool { true }
}
