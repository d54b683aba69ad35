import Persistence
import Protocol

/// Who a connection is, from its verified token.
struct SessionUser: Sendable, Equatable {
    let id: String
    let role: Role
    let name: String
    /// Subscribed services (clients); nil means all.
    let services: [String]?

    var record: UserRecord { UserRecord(id: id, role: role.rawValue, name: name, services: services) }
}
