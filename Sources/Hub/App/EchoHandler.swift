import Protocol

// The conformance route (`--echo-path`): every message goes back as it came, text or binary.
// It exists so a third-party suite (Autobahn) can exercise the engine; off by default.
final class EchoHandler: WebSocketHandler {
    func didReceive(_ connection: Connection, opcode: Opcode, payload: UnsafeRawBufferPointer) {
        connection.send(opcode, payload)
    }
}
