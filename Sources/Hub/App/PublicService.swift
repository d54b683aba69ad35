import Protocol

// Routes of the public listener (PROTOCOL.md "Listeners"): the WebSocket endpoint, the web
// console, health, and the optional conformance echo route.
struct PublicService: HTTPService {
    let echoPath: String?
    let handshake: HandshakeOptions
    let counters: EngineCounters
    let chat: ChatService

    func handle(_ request: HTTPRequest, on connection: Connection) -> HTTPReply {
        let path = request.path
        if let echoPath, path == echoPath {
            return .webSocket(EchoHandler(), handshake)
        }
        switch path {
        case "/ws":
            return .webSocket(Session(chat: chat, urlToken: request.query["token"]), handshake)
        case "/healthz":
            guard request.method == "GET" || request.method == "HEAD" else { return .respond(methodNotAllowed) }
            return .respond(.json(.ok, "{\"status\":\"ok\",\"connections\":\(counters.connections.load(ordering: .relaxed))}"))
        case "/":
            guard request.method == "GET" || request.method == "HEAD" else { return .respond(methodNotAllowed) }
            return .respond(.text(.ok, ConsolePage.html, contentType: "text/html; charset=utf-8"))
        default:
            return .respond(.error(.notFound, "no such path"))
        }
    }

    private var methodNotAllowed: HTTPResponse {
        var r = HTTPResponse.error(.methodNotAllowed, "method not allowed")
        r.headers.append(("Allow", "GET, HEAD"))
        return r
    }
}

/// A placeholder console until the web console lands: says the hub is up.
enum ConsolePage {
    static let html = """
    <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Montrose Hub</title>
    <meta name="viewport" content="width=device-width,initial-scale=1"></head>
    <body><h1>Montrose Hub</h1><p>The hub is running. WebSocket endpoint: <code>/ws</code>.</p></body></html>
    """
}
