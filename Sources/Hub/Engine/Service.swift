import Protocol

// The seam between the engine and what the hub serves. A listener has one HTTPService,
// shared by every loop (so it is Sendable and keeps no per-connection state); a WebSocket
// upgrade hands the connection to a WebSocketHandler that lives on the connection's loop.

protocol HTTPService: Sendable {
    /// Called on the connection's loop for every complete request.
    func handle(_ request: HTTPRequest, on connection: Connection) -> HTTPReply
}

enum HTTPReply {
    case respond(HTTPResponse)
    /// Upgrade to WebSocket (the handshake is checked by the connection) and hand the
    /// connection to `handler`.
    case webSocket(WebSocketHandler, HandshakeOptions)
    /// The service answers later with `Connection.respond`, on the connection's loop.
    case later
}

/// Per-connection WebSocket behaviour. Called only on the connection's loop.
protocol WebSocketHandler: AnyObject {
    func didOpen(_ connection: Connection)
    /// A data message. `payload` is valid only during the call (it may lie in the loop's read
    /// buffer): a handler that keeps any of it copies it.
    func didReceive(_ connection: Connection, opcode: Opcode, payload: UnsafeRawBufferPointer)
    /// Once, when the connection ends for any reason (after a close handshake, an error or EOF).
    func didClose(_ connection: Connection, code: CloseCode?)
    /// About once a second, from the loop's sweep, with monotonic milliseconds.
    func tick(_ connection: Connection, now: Int64)
    /// The output queue emptied after `notifyWhenDrained()` asked to hear of it.
    func didDrain(_ connection: Connection)
}

extension WebSocketHandler {
    func didOpen(_ connection: Connection) {}
    func didClose(_ connection: Connection, code: CloseCode?) {}
    func tick(_ connection: Connection, now: Int64) {}
    func didDrain(_ connection: Connection) {}
}
