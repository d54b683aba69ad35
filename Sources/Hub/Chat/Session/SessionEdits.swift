import Core
import Persistence
import Protocol

// Edit and delete (docs/protocol.md "Edit and delete"), and an admin's read of a message's edits.
extension Session {
    func edit(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        replyError(c, id, .unavailable, "edit is not built yet")
    }
    func delete(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        replyError(c, id, .unavailable, "delete is not built yet")
    }
    func edits(_ c: Connection, _ id: Int64, _ request: JSON, _ user: SessionUser) {
        replyError(c, id, .unavailable, "edits is not built yet")
    }
}
