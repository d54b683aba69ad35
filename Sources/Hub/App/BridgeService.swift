import Protocol

// Routes of the internal bridge listener. The /v1 API arrives with the bridge issue; for now
// health and a minimal Prometheus page.
struct BridgeService: HTTPService {
    let counters: EngineCounters

    func handle(_ request: HTTPRequest, on connection: Connection) -> HTTPReply {
        switch request.path {
        case "/healthz":
            return .respond(.json(.ok, "{\"status\":\"ok\"}"))
        case "/metrics":
            let body = """
            # HELP montrose_connections Open TCP connections on both listeners.
            # TYPE montrose_connections gauge
            montrose_connections \(counters.connections.load(ordering: .relaxed))
            # HELP montrose_websockets Open WebSocket connections.
            # TYPE montrose_websockets gauge
            montrose_websockets \(counters.webSockets.load(ordering: .relaxed))

            """
            return .respond(.text(.ok, body, contentType: "text/plain; version=0.0.4"))
        default:
            return .respond(.error(.notFound, "no such path"))
        }
    }
}
