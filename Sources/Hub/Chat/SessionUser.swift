import Persistence
import Protocol

/// Who a connection is, from its verified token.
struct SessionUser: Sendable, Equatable {
    // `role` (one byte) last: every session holds one inline, and a field after it can
    // take the rest of its word.
    let id: String
    let name: String
    /// Subscribed services (clients); nil means all.
    let services: [String]?
    let role: Role

    init(id: String, role: Role, name: String, services: [String]?) {
        self.id = id
        self.role = role
        self.name = name
        self.services = services
    }

    var record: UserRecord { UserRecord(id: id, role: role.rawValue, name: name, services: services) }
}
