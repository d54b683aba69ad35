import Protocol

extension StoreError {
    /// What a client is told about a failed store request, on the WebSocket and the bridge alike.
    /// An internal error's detail stays in the log; the client gets "storage error".
    public var reply: (code: ErrorCode, message: String) {
        switch self {
        case .unavailable(let why): return (.unavailable, why)
        case .closing: return (.unavailable, "the hub is shutting down")
        case .conflict(let why): return (.conflict, why)
        case .internalError: return (.internal, "storage error")
        }
    }
}
