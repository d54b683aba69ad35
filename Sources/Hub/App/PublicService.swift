import Core
import Protocol

// Routes of the public listener (docs/protocol.md "Listeners"): the WebSocket endpoint, the web
// console, health, and the optional conformance echo route.
struct PublicService: HTTPService {
    let echoPath: String?
    let handshake: HandshakeOptions
    let counters: EngineCounters
    let chat: ChatService
    let console: ConsoleRoutes
    /// On a node of several: whether its cluster-state connection (presence, online users,
    /// assignments) is up, beside the bus's shards.
    var clusterStateUp: (@Sendable () -> Bool)? = nil

    func handle(_ request: HTTPRequest, on connection: Connection) -> HTTPReply {
        let path = request.path
        if let echoPath, path == echoPath {
            return .webSocket(EchoHandler(), handshake)
        }
        switch path {
        case "/ws":
            // Connections that have not authenticated yet are bounded hub-wide.
            if chat.unauthenticated.load(ordering: .relaxed) >= chat.limits.maxUnauthenticated {
                Log.info("limit_unauthenticated", ["peer": connection.peer.description, "limit": "\(chat.limits.maxUnauthenticated)"])
                var busy = HTTPResponse.error(.serviceUnavailable, "too many connections waiting to authenticate; retry shortly")
                busy.headers.append(("Retry-After", "1"))
                return .respond(busy)
            }
            return .webSocket(Session(chat: chat, urlToken: request.queryValue("token")), handshake)
        case "/healthz":
            guard request.method == "GET" || request.method == "HEAD" else { return .respond(methodNotAllowed) }
            return .respond(health())
        default:
            return .respond(console.handle(request, peer: connection.peer) ?? .error(.notFound, "no such path"))
        }
    }

    private var methodNotAllowed: HTTPResponse { .methodNotAllowed(allow: "GET, HEAD") }

    /// `ok`, or on a node of several whose bus to the others is down (a Redis instance not
    /// connected, or silent past its probe) or whose cluster-state connection is, 503
    /// `degraded` naming it: such a node still stores
    /// and acknowledges, but its clients miss other nodes' pushes until it is back, so a load
    /// balancer should send new clients elsewhere.
    private func health() -> HTTPResponse {
        let connections = counters.connections.load(ordering: .relaxed)
        guard let bus = chat.broker as? RedisBroker else {
            return .json(.ok, "{\"status\":\"ok\",\"connections\":\(connections)}")
        }
        let shards = bus.status()
        let stateUp = clusterStateUp?() ?? true
        let healthy = stateUp && shards.allSatisfy(\.up)
        var w = JSONWriter(capacity: 256)
        w.beginObject()
        w.key("status"); w.string(healthy ? "ok" : "degraded")
        w.key("connections"); w.int(Int64(connections))
        w.key("node"); w.string(bus.nodeID)
        w.key("redis"); w.objects(shards) { w, s in
            w.key("endpoint"); w.string(s.endpoint)
            w.key("up"); w.bool(s.up)
            if let ms = s.lastProbeMs { w.key("last_probe_ms"); w.int(ms) }
        }
        w.key("cluster_state_up"); w.bool(stateUp)
        w.endObject()
        return .json(healthy ? .ok : .serviceUnavailable, String(decoding: w.bytes, as: UTF8.self))
    }
}
