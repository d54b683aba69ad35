import Bridge
import Protocol

// The internal bridge listener: every request goes to the Bridge module's API, which answers
// later (after the store) from whatever thread; the answer hops back to the connection's loop.
struct BridgeService: HTTPService {
    let api: BridgeAPI

    func handle(_ request: HTTPRequest, on connection: Connection) -> HTTPReply {
        let loop = connection.loop
        let id = connection.id
        api.handle(request) { response in
            loop.execute { loop in loop.connection(id)?.respond(response) }
        }
        return .later
    }
}
