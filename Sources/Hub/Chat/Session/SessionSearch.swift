import Core
import Persistence
import Protocol

// The search op (docs/protocol.md "Search"). PLACEHOLDER: being built.
extension Session {
    func search(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        replyError(c, id, .unavailable, "search is not built yet")
    }
}
