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

    func handle(_ request: HTTPRequest, on connection: Connection) -> HTTPReply {
        let path = request.path
        if let echoPath, path == echoPath {
            return .webSocket(EchoHandler(), handshake)
        }
        switch path {
        case "/ws":
            // Connections that have not authenticated yet are bounded hub-wide.
            if chat.unauthenticated.load(ordering: .relaxed) >= chat.limits.maxUnauthenticated {
                Log.info("limit_unauthenticated", ["peer": connection.peer, "limit": "\(chat.limits.maxUnauthenticated)"])
                var busy = HTTPResponse.error(.serviceUnavailable, "too many connections waiting to authenticate; retry shortly")
                busy.headers.append(("Retry-After", "1"))
                return .respond(busy)
            }
            return .webSocket(Session(chat: chat, urlToken: request.query["token"]), handshake)
        case "/healthz":
            guard request.method == "GET" || request.method == "HEAD" else { return .respond(methodNotAllowed) }
            return .respond(.json(.ok, "{\"status\":\"ok\",\"connections\":\(counters.connections.load(ordering: .relaxed))}"))
        default:
            return .respond(console.handle(request, peer: connection.peer) ?? .error(.notFound, "no such path"))
        }
    }

    private var methodNotAllowed: HTTPResponse { .methodNotAllowed(allow: "GET, HEAD") }
}
